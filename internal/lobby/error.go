package lobby

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the person who sees it; the API maps each
// kind to an HTTP status and the CLI to an exit code.
type Kind string

// Error kinds.
const (
	KindInvalid      Kind = "invalid"      // the request is malformed or breaks a rule
	KindUnauthorized Kind = "unauthorized" // no or bad credentials
	KindForbidden    Kind = "forbidden"    // authenticated, but the role or policy does not allow it
	KindNotFound     Kind = "not_found"    // the named thing does not exist
	KindConflict     Kind = "conflict"     // the state does not allow it now (exhausted pool, name taken)
	KindTooLarge     Kind = "too_large"    // the request body is over the limit
	KindRateLimited  Kind = "rate_limited" // too many attempts; wait and try again
	KindUnavailable  Kind = "unavailable"  // a dependency (host, store) cannot serve it now
	KindMaintenance  Kind = "maintenance"  // the node is in maintenance mode
	KindInternal     Kind = "internal"     // a bug or an unexpected failure
)

// Error is an error meant for users: Message says what was wrong and, where
// it can, what to do about it.
type Error struct {
	Kind    Kind
	Message string
	// Field names the input at fault (e.g. "max_size"), so a form can show
	// the message next to it; empty when no single field is to blame.
	Field string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error of kind k.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an invalid-input *Error about one field.
func FieldErrorf(field, format string, args ...any) error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorField returns the field err blames, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// ErrorKind returns the kind of err, KindInternal when it is not an *Error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrorMessage returns the user-facing message of err; internal errors are
// reduced to a generic message so no internals leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
