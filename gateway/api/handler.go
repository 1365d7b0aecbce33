package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	// maxBodyBytes bounds a request body; a publish larger than this is
	// far beyond any sane WebSocket message anyway.
	maxBodyBytes = 1 << 20
	// callTimeout bounds one request's Backend calls, so a stuck broker
	// turns into a 503 instead of piling up goroutines.
	callTimeout = 10 * time.Second
	pathPrefix  = "/api/"
)

// method is one API method: it decodes body and returns the response
// object (marshalled as JSON) or an error (see writeError).
type method func(ctx context.Context, w http.ResponseWriter, body []byte) (any, error)

type handler struct {
	key      keyCheck
	b        Backend
	log      *slog.Logger
	failures *failureLog
	methods  map[string]method
}

// New returns the API handler. Every request must carry
// "Authorization: apikey <key>"; an empty key refuses every request, so a
// missing setting cannot leave the API open. log may be nil.
func New(key string, b Backend, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		key:      newKeyCheck(key),
		b:        b,
		log:      log,
		failures: newFailureLog(log, failureReportEvery, time.Now),
	}
	h.methods = map[string]method{
		"publish":        h.publish,
		"broadcast":      h.broadcast,
		"disconnect":     h.disconnect,
		"unsubscribe":    h.unsubscribe,
		"presence":       h.presence,
		"presence_stats": h.presenceStats,
		"history":        h.history,
		"channels":       h.channels,
		"info":           h.info,
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Authentication comes first: without a key nothing else about the
	// API (its methods, its limits) is revealed.
	if !h.key.ok(r.Header.Get("Authorization")) {
		h.log.Debug("api: unauthorized request", "remote", r.RemoteAddr, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `apikey realm="wsgate"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid API key")
		return
	}
	name, found := strings.CutPrefix(r.URL.Path, pathPrefix)
	m := h.methods[name]
	if !found || m == nil {
		writeError(w, http.StatusNotFound, "no such method: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed, use POST")
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, name, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	resp, err := m(ctx, w, body)
	if err != nil {
		h.fail(w, name, err)
		return
	}
	// No failures.succeeded() here: a 200 does not mean the broker is
	// back (info never asks it; a broadcast is 200 even when every
	// channel failed). The methods that reach it record their successes.
	writeJSON(w, http.StatusOK, resp)
}

// readBody reads the whole body, refusing more than maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The server's read timeout ran out mid-body (a slow or stalled
		// upload): the caller's fault, but not a malformed request.
		return nil, &statusError{http.StatusRequestTimeout, "body not received in time"}
	case err != nil:
		return nil, &statusError{http.StatusBadRequest, "reading body: " + err.Error()}
	}
	return body, nil
}

// fail answers err, logging what the operator should see: Backend
// failures (once per outage, see failureLog), not the caller's mistakes.
func (h *handler) fail(w http.ResponseWriter, name string, err error) {
	status, reason := classify(err)
	if status >= 500 {
		h.failures.failed(name, err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	var pf *publishFailure
	if errors.As(err, &pf) {
		writeJSON(w, status, struct {
			Error   string `json:"error"`
			Outcome string `json:"outcome"`
		}{reason, pf.outcome()})
		return
	}
	writeError(w, status, reason)
}
