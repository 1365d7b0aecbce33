package api

import "strings"

// maxPatternBytes bounds a channels pattern.
const maxPatternBytes = 256

// checkPattern validates a channels pattern: channel-name text with '*'
// wildcards. '*' is reserved in channel names, so it can never mean
// itself, and no escaping is needed.
func (h *handler) checkPattern(p string) error {
	if len(p) > maxPatternBytes {
		return badRequest(`"pattern" is over %d bytes`, maxPatternBytes)
	}
	for part := range strings.SplitSeq(p, "*") {
		if part != "" && !h.b.ValidChannel(part) {
			return badRequest(`"pattern" %q: only channel-name characters and '*' are allowed`, clip(p))
		}
	}
	return nil
}

// match reports whether name matches pattern, where '*' matches any run of
// bytes (':' and '/' included: namespaces are a convention, not a
// hierarchy). Taking each middle part at its leftmost occurrence is
// enough when '*' is the only wildcard, so there is no backtracking.
func match(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	first, last := parts[0], parts[len(parts)-1]
	rest, ok := strings.CutPrefix(name, first)
	if !ok {
		return false
	}
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, part)
		if i < 0 {
			return false
		}
		rest = rest[i+len(part):]
	}
	return strings.HasSuffix(rest, last)
}
