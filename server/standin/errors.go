package standin

import (
	"errors"
	"fmt"
)

// ErrInDoubt marks a write whose outcome is not known: the database
// failed while it was being stored and could not be asked afterwards. A
// write in doubt must not be undone as if it failed; what happened is
// found out later (audit.Log.Settle).
var ErrInDoubt = errors.New("the write may or may not have been stored")

// Error codes. Each maps to one HTTP status in the HTTP layer; the code
// itself is what clients switch on, so codes are never renamed.
const (
	EInvalid         = "invalid_input"          // malformed or unacceptable input
	EMalformedJSON   = "malformed_json"         // a request body that is not valid JSON
	EUnauthenticated = "unauthenticated"        // no valid session, or bad credentials
	EForbidden       = "forbidden"              // authenticated but not allowed
	ECSRF            = "csrf_failed"            // missing or wrong X-CSRF-Token, or foreign Origin
	ENotFound        = "not_found"              // the thing asked for does not exist
	EConflict        = "conflict"               // the request clashes with current state
	EPaused          = "session_paused"         // a moderated session nobody watches refuses its actor's requests
	ETooManyRequests = "too_many_requests"      // rate limited
	ETooLarge        = "payload_too_large"      // body over the limit
	EMediaType       = "unsupported_media_type" // a body that is not application/json
	EUnavailable     = "unavailable"            // a dependency (the database) is down
	EInternal        = "internal"               // a fault; details are logged, never sent
)

// Codes lists every error code above, so the HTTP layer can prove it maps
// each to a status.
func Codes() []string {
	return []string{EInvalid, EMalformedJSON, EUnauthenticated, EForbidden, ECSRF, ENotFound,
		EConflict, EPaused, ETooManyRequests, ETooLarge, EMediaType, EUnavailable, EInternal}
}

// Error is an error a person can be shown: a stable code, a sentence, and for
// policy denials the reason that names the missing role, training or rule.
//
// Cause keeps the underlying fault for logs; it is never shown to clients.
type Error struct {
	Code    string
	Message string
	Reason  string
	Cause   error
}

// Error implements the error interface.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the underlying fault, if any.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of the first *Error in err's chain, and
// a generic sentence for any other error so internals never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "An internal error occurred."
}
