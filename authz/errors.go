package authz

import (
	"errors"
	"fmt"
)

// Kind classifies the errors the Authorizer makes itself, for its caller to
// translate into its own error codes.
type Kind string

// Error kinds.
const (
	// Invalid: a policy, a subject or the configuration is malformed, or a
	// stored rule does not fit the model.
	Invalid Kind = "invalid"
	// Conflict: the change clashes with the current policies (the policy
	// exists already, or removing it would lock everyone out of changing
	// policies).
	Conflict Kind = "conflict"
	// NotFound: the policy to remove does not exist.
	NotFound Kind = "not_found"
)

// Error is an error the Authorizer made itself. Message is a sentence a
// person can act on. Errors from the PolicyStore and the Directory are not
// of this type: they are returned wrapped, as their source made them, and
// any other fault is an uncoded error.
type Error struct {
	Kind    Kind
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return "authz: " + string(e.Kind) + ": " + e.Message }

// errorf returns an *Error of kind k with a formatted message.
func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, and "" when
// there is none (nil, or an error the Authorizer did not make).
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return ""
}
