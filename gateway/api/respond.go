package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// statusError is a failure the API itself decided, with its status.
type statusError struct {
	status int
	reason string
}

func (e *statusError) Error() string { return e.reason }

var errTooLarge = &statusError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxBodyBytes)}

// badRequest is a 400 with a reason naming what is wrong.
func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// classify picks the status and reason for err. Backend errors keep their
// text: the caller is a trusted backend, and "redis: connection refused"
// tells its operator more than "internal error".
func classify(err error) (int, string) {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.status, se.reason
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrKeyReused):
		return http.StatusConflict, ErrKeyReused.Error()
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrOutcomeUnknown),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

func writeError(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Payloads are embedded as sent; "<" must not become "\u003c" in
	// a publication's data.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a Backend's Info map can hold unmarshallable values.
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(map[string]string{"error": "encoding response: " + err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
