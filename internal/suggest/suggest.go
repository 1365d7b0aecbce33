// Package suggest finds the name a user probably meant, for "unknown key"
// errors in configuration.
package suggest

import (
	"fmt"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Closest returns the candidate nearest to word by edit distance, if one is
// near enough to be a typo: at most a third of word's length, and at least
// one edit allowed. Case and '-' versus '_' do not count as differences.
func Closest(word string, candidates []string) (string, bool) {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }
	w := norm(word)
	best, bestDist := "", max(1, len(w)/3)+1
	for _, c := range candidates {
		if d := levenshtein.ComputeDistance(w, norm(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best, best != ""
}

// UnknownKey is the error for a key that is not one of known: it names the
// key and, when there is one, the key probably meant.
func UnknownKey(key string, known []string) error {
	if s, ok := Closest(key, known); ok {
		return fmt.Errorf("unknown key %q; did you mean %q?", key, s)
	}
	return fmt.Errorf("unknown key %q", key)
}
