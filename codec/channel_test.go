package codec

import (
	"strings"
	"testing"
)

func TestValidChannel(t *testing.T) {
	valid := []string{"a", "chat", "chat:room1", "user#42", "dialog#42,43", "a.b-c_d", "x@y=z+w/v", "ABC123",
		strings.Repeat("z", DefaultMaxChannelBytes), ":", "#", "a::b"}
	invalid := []string{"", strings.Repeat("z", DefaultMaxChannelBytes+1), " a", "a ", "a b", "a\tb", "a\nb", "é",
		"a\x00", "$internal", "a*", "a?", "a!", "a%20", `a"b`, "a\\b", "a'b", "a;b", "a<b>", "a[0]", "a{b}", "a|b", "a~b", "a`b", "a^b", "a&b", "\x7f", "\xff"}
	for _, s := range valid {
		if !ValidChannel([]byte(s), 0) {
			t.Errorf("ValidChannel(%q) = false", s)
		}
	}
	for _, s := range invalid {
		if ValidChannel([]byte(s), 0) {
			t.Errorf("ValidChannel(%q) = true", s)
		}
	}
	if ValidChannel([]byte("abcde"), 4) || !ValidChannel([]byte("abcd"), 4) {
		t.Error("maxLen not applied")
	}
	// Exactly the documented set, byte by byte.
	const set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:#,.@=+-/"
	for c := 0; c < 256; c++ {
		if got, want := ValidChannel([]byte{byte(c)}, 0), strings.IndexByte(set, byte(c)) >= 0; got != want {
			t.Errorf("byte %#x: valid = %v, want %v", c, got, want)
		}
	}
}
