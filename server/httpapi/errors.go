package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"standin/server/standin"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[string]int{
	standin.EInvalid:         http.StatusUnprocessableEntity,
	standin.EMalformedJSON:   http.StatusBadRequest,
	standin.EUnauthenticated: http.StatusUnauthorized,
	standin.EForbidden:       http.StatusForbidden,
	standin.ECSRF:            http.StatusForbidden,
	standin.ENotFound:        http.StatusNotFound,
	standin.EConflict:        http.StatusConflict,
	standin.EPaused:          http.StatusLocked,
	standin.ETooManyRequests: http.StatusTooManyRequests,
	standin.ETooLarge:        http.StatusRequestEntityTooLarge,
	standin.EMediaType:       http.StatusUnsupportedMediaType,
	standin.EUnavailable:     http.StatusServiceUnavailable,
	standin.EInternal:        http.StatusInternalServerError,
}

// fiberCodes turns Fiber's own errors (unknown route, body too large, …)
// into coded errors with sentences a person understands.
var fiberCodes = map[int]*standin.Error{
	fiber.StatusNotFound:              {Code: standin.ENotFound, Message: "There is nothing at this address."},
	fiber.StatusMethodNotAllowed:      {Code: "method_not_allowed", Message: "This address does not accept that method."},
	fiber.StatusRequestEntityTooLarge: {Code: standin.ETooLarge, Message: "The request body is too large."},
	fiber.StatusBadRequest:            {Code: standin.EMalformedJSON, Message: "The request could not be read."},
	fiber.StatusRequestTimeout:        {Code: "request_timeout", Message: "The request took too long to arrive."},
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason,omitempty"`
}

// errorHandler writes every error as {"error": {"code", "message"}}.
// Unknown errors are logged and answered with a 500 that says nothing more.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		body, status := errorResponse(err)
		switch {
		case status >= 500 && body.Error.Code == standin.EInternal:
			log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
		case status >= 500:
			log.Warn("request failed", "method", c.Method(), "path", c.Path(), "code", body.Error.Code, "err", err)
		}
		if status == http.StatusTooManyRequests {
			if e, ok := errors.AsType[*retryError](err); ok {
				c.Set(fiber.HeaderRetryAfter, e.retryAfter)
			}
		}
		return c.Status(status).JSON(body)
	}
}

func errorResponse(err error) (errorBody, int) {
	if fe, ok := errors.AsType[*fiber.Error](err); ok {
		if e, known := fiberCodes[fe.Code]; known {
			return errorBody{Error: errorDetail{Code: e.Code, Message: e.Message}}, fe.Code
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return errorBody{Error: errorDetail{Code: "bad_request", Message: "The request was not accepted."}}, fe.Code
		}
	}
	code := standin.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = standin.EInternal, http.StatusInternalServerError
	}
	d := errorDetail{Code: code, Message: standin.ErrorMessage(err)}
	if e, ok := errors.AsType[*standin.Error](err); ok {
		d.Reason = e.Reason
	}
	if code == standin.EInternal {
		d = errorDetail{Code: code, Message: "internal error"}
	}
	return errorBody{Error: d}, status
}

// retryError is a rate-limit refusal that tells the client when to retry.
type retryError struct {
	err        *standin.Error
	retryAfter string // seconds
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }
