package api

import (
	"unicode/utf8"

	"github.com/wsgate/wsgate/codec"
)

const (
	// maxReasonBytes is what fits in a close frame after the code.
	maxReasonBytes = 123
	// maxQuoted bounds how much of a bad value an error reason repeats.
	maxQuoted = 140
)

// checkChannel validates a required channel name in field.
func (h *handler) checkChannel(field, name string) error {
	if name == "" {
		return badRequest("missing %q", field)
	}
	if !h.b.ValidChannel(name) {
		return badRequest("%s: bad channel name %q (1 to the gateway's limit of bytes from A-Z a-z 0-9 _ : # , . @ = + - /)", field, clip(name))
	}
	return nil
}

// idempotencyKey returns the key, "" when absent. An empty string is an
// error rather than "no key": a caller sending one almost certainly meant
// to be protected and is not.
func idempotencyKey(k *string) (string, error) {
	switch {
	case k == nil:
		return "", nil
	case *k == "" || len(*k) > codec.MaxIdempotencyKeyBytes:
		return "", badRequest(`"idempotency_key" must be 1 to %d bytes`, codec.MaxIdempotencyKeyBytes)
	}
	return *k, nil
}

// target is the user/client pair of disconnect and unsubscribe. An empty
// user is the same as none: matching every anonymous connection by
// accident is too easy a mistake to allow.
type target struct {
	User   string `json:"user"`
	Client string `json:"client"`
}

func (t target) check() error {
	if t.User == "" && t.Client == "" {
		return badRequest(`missing "user" or "client"`)
	}
	return nil
}

// clip shortens s for quoting in an error reason.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	s = s[:maxQuoted]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
