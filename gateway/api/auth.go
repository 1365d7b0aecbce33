package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// keyCheck verifies "Authorization: apikey <key>" headers.
type keyCheck struct {
	sum [sha256.Size]byte
	set bool
}

func newKeyCheck(key string) keyCheck {
	return keyCheck{sum: sha256.Sum256([]byte(key)), set: key != ""}
}

// ok reports whether header carries the key. Both sides are hashed before
// the constant-time comparison because subtle.ConstantTimeCompare returns
// at once on a length mismatch, which would reveal the key's length.
func (k keyCheck) ok(header string) bool {
	scheme, given, found := strings.Cut(strings.TrimSpace(header), " ")
	if !k.set || !found || !strings.EqualFold(scheme, "apikey") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(given)))
	return subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1
}
