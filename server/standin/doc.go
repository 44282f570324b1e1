// Package standin holds the domain of the Standin support console: the
// people, the facility they book, sessions, the principal that travels in a
// request's context, and the coded error every layer speaks.
//
// It imports only the standard library; every other package may import it.
package standin
