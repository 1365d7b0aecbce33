package api

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"chat:1", "chat:1", true},
		{"chat:1", "chat:10", false},
		{"*", "anything/at:all", true},
		{"chat:*", "chat:", true},
		{"chat:*", "chat:room/1", true},
		{"chat:*", "xchat:1", false},
		{"*:1", "chat:1", true},
		{"*:1", "chat:12", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false}, // the prefix and suffix must not overlap
		{"a*a", "aa", true},
		{"**", "", true},
		{"*b*b", "abab", true},
		{"*ab*ab", "abab", true},
		{"*ab*ab", "aba", false},
	}
	for _, tt := range tests {
		if got := match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("match(%q, %q) = %v", tt.pattern, tt.name, got)
		}
	}
}
