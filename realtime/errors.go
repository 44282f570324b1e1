package realtime

import (
	"errors"
	"fmt"
)

// Error codes of the hub's own errors: those Config, Publish and the
// upgrade report, and those the application's Sessions and Authorizer
// return. The HTTP errors of the upgrade carry them as
// {"error":{"code":C,"message":M}}, and clients switch on them, so they
// are never renamed. The socket's message codes follow ValidTopic.
const (
	// EInvalid: a bad Config, topic or payload.
	EInvalid = "invalid_input"
	// EUnauthenticated: no valid session (401 on upgrade).
	EUnauthenticated = "unauthenticated"
	// EUnavailable: a dependency failed or the hub is full or closing; the
	// client may try again (503 on upgrade, a message on the socket).
	EUnavailable = "unavailable"
	// EInternal: a fault; the message is logged, never sent.
	EInternal = "internal"
)

// Error is an error of the hub, or one the application returns to it: a
// code the hub acts on, a sentence the client may be shown, and the cause
// kept for the logs.
type Error struct {
	Code    string
	Message string
	Cause   error
}

// Error implements the error interface.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of the first *Error in err's chain, a
// generic sentence for any other error and "" for nil.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "An internal error occurred."
}
