// Package httperr holds errors fit to show the person who made a request: an HTTP status, a
// stable code, a message they can act on and the form field it concerns. The cause, if any,
// travels with it for the log and is never shown. Any other error is internal: From turns it
// into a generic message and keeps it as the cause.
package httperr

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Error is an error fit to show. Its JSON form is what the API answers under "error".
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, when set, is how soon the request may succeed if sent again: the edge
	// answers it as Retry-After.
	RetryAfter time.Duration `json:"-"`

	cause error
}

// Error is the message to show; the cause is not part of it.
func (e *Error) Error() string { return e.Message }

// Unwrap is the cause, so errors.Is and errors.As see through to it.
func (e *Error) Unwrap() error { return e.cause }

// WithCause returns a copy of e that carries cause for the log.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// New is an error with status, a stable code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// NotFound says there is no such what ("project", "session", …).
func NotFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "No such " + what + "."}
}

// Invalid says what is wrong with a request's field.
func Invalid(field, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: message, Field: field}
}

// Internal stands for something that went wrong on doce's side: cause goes to the log only.
func Internal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal",
		Message: "Something went wrong on our side. Try again; if it persists, tell your operator.", cause: cause}
}

// Canceled is a request its client gave up on (nginx's 499: no one reads the answer).
var Canceled = &Error{Status: 499, Code: "canceled", Message: "The request was canceled."}

// From is the Error in err's chain, Canceled for a canceled request, or else Internal(err).
func From(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.Canceled):
		return Canceled
	default:
		return Internal(err)
	}
}
