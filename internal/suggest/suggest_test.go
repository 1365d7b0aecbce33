package suggest

import "testing"

func TestClosest(t *testing.T) {
	keys := []string{"presence", "join_leave", "history_size", "history_ttl", "max_queue_bytes", "listen", "echo"}
	for _, tc := range []struct {
		word, want string
	}{
		{"presense", "presence"},
		{"Presence", "presence"},
		{"join-leave", "join_leave"},
		{"histroy_size", "history_size"},
		{"history_tll", "history_ttl"},
		{"max-queue-bytes", "max_queue_bytes"},
		{"max_queue_byte", "max_queue_bytes"},
		{"lsten", "listen"},
		{"ecko", "echo"},
		{"colour", ""},
		{"x", ""},
		{"subscribe", ""},
	} {
		got, ok := Closest(tc.word, keys)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Closest(%q) = %q, %v; want %q", tc.word, got, ok, tc.want)
		}
	}
	if err := UnknownKey("presense", keys); err.Error() != `unknown key "presense"; did you mean "presence"?` {
		t.Errorf("UnknownKey: %v", err)
	}
	if err := UnknownKey("colour", keys); err.Error() != `unknown key "colour"` {
		t.Errorf("UnknownKey without a suggestion: %v", err)
	}
}
