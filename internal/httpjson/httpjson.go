// Package httpjson reads and writes the JSON bodies of Lobby's HTTP
// interfaces (the REST API and the gateway's refusals): strict decoding
// with a size limit, and errors as {"error":{"code","message"}} with the
// HTTP status of their lobby.Kind.
package httpjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"lobby/internal/lobby"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

var statusOf = map[lobby.Kind]int{
	lobby.KindInvalid:      http.StatusBadRequest,
	lobby.KindUnauthorized: http.StatusUnauthorized,
	lobby.KindForbidden:    http.StatusForbidden,
	lobby.KindNotFound:     http.StatusNotFound,
	lobby.KindConflict:     http.StatusConflict,
	lobby.KindTooLarge:     http.StatusRequestEntityTooLarge,
	lobby.KindRateLimited:  http.StatusTooManyRequests,
	lobby.KindUnavailable:  http.StatusServiceUnavailable,
	lobby.KindMaintenance:  http.StatusServiceUnavailable,
	lobby.KindInternal:     http.StatusInternalServerError,
}

// Status returns the HTTP status for an error's kind.
func Status(err error) int { return statusOf[lobby.ErrorKind(err)] }

// Write answers v as JSON with the status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// ErrorBody is the shape of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"` // the input at fault, when one is
	} `json:"error"`
}

// Error answers err in the error shape. Internal errors are logged with
// their detail and answered with a generic message.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var body ErrorBody
	body.Error.Code = string(lobby.ErrorKind(err))
	body.Error.Message = lobby.ErrorMessage(err)
	body.Error.Field = lobby.ErrorField(err)
	if lobby.ErrorKind(err) == lobby.KindInternal && log != nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	switch lobby.ErrorKind(err) {
	case lobby.KindUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="lobby"`)
	case lobby.KindMaintenance:
		w.Header().Set("Retry-After", "60")
	}
	Write(w, Status(err), body)
}

// Decode reads exactly one JSON object of at most MaxBody bytes into v,
// refusing unknown fields and wrong types with a message that names them.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return lobby.Errorf(lobby.KindInvalid, "Content-Type %q is not supported: send application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return decodeError(err)
		}
		return lobby.Errorf(lobby.KindInvalid, "the request body has data after the JSON object: send exactly one object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syn     *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		invalid *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &tooBig):
		return lobby.Errorf(lobby.KindTooLarge, "the request body is larger than %d bytes", MaxBody)
	case errors.Is(err, io.EOF):
		return lobby.Errorf(lobby.KindInvalid, "the request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return lobby.Errorf(lobby.KindInvalid, "the request body is not valid JSON: it ends early")
	case errors.As(err, &syn):
		return lobby.Errorf(lobby.KindInvalid, "the request body is not valid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return lobby.Errorf(lobby.KindInvalid, "the request body must be a JSON object, not %s", typ.Value)
		}
		return lobby.Errorf(lobby.KindInvalid, "field %q must be %s, not %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &invalid):
		return fmt.Errorf("decode: %w", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return lobby.Errorf(lobby.KindInvalid, "the request has an unknown field %s: check the API reference", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return lobby.Errorf(lobby.KindInvalid, "the request body is not valid: %s", err.Error())
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}
