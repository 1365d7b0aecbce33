package gateway

import (
	"strings"
	"testing"
)

// TestDeflateNegotiation: the upgrade answers a permessage-deflate offer
// with both no-context-takeover parameters (and the server window when
// offered), declines offers it cannot meet without failing the handshake,
// and negotiates nothing with compression off or after a refusal.
func TestDeflateNegotiation(t *testing.T) {
	const ext = "Sec-WebSocket-Extensions: "
	cases := []struct {
		name   string
		off    bool
		hook   bool
		extra  []string
		status string
		answer string // the extension response ("" none)
	}{
		{"browser offer", false, false, []string{ext + "permessage-deflate; client_max_window_bits"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"window 15", false, false, []string{ext + "permessage-deflate; server_max_window_bits=15"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15"},
		{"two header lines", false, false, []string{ext + "permessage-deflate; server_max_window_bits=9", ext + "permessage-deflate"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"small window declined", false, false, []string{ext + "permessage-deflate; server_max_window_bits=9"}, "101", ""},
		{"malformed declined", false, false, []string{ext + "permessage-deflate; client_max_window_bits=abc"}, "101", ""},
		{"unknown extension", false, false, []string{ext + "x-webkit-deflate-frame"}, "101", ""},
		{"no offer", false, false, nil, "101", ""},
		{"compression off", true, false, []string{ext + "permessage-deflate"}, "101", ""},
		{"with a hook", false, true, []string{ext + "permessage-deflate"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	}
	for _, tc := range cases {
		for _, path := range []string{"/ws", "/echo"} {
			t.Run(tc.name+path, func(t *testing.T) {
				u := testUpgrader(func(c *Config) {
					c.Compression = !tc.off
					if tc.hook {
						c.Hook = hookFunc(func(*HandshakeRequest) (Identity, error) { return Identity{UserID: "1"}, nil })
					}
				})
				res := u.upgrade(request(path, tc.extra...))
				resp := string(res.response)
				if !strings.HasPrefix(resp, "HTTP/1.1 "+tc.status) {
					t.Fatalf("response %q", resp)
				}
				got := ""
				for line := range strings.SplitSeq(resp, "\r\n") {
					if v, ok := strings.CutPrefix(line, ext); ok {
						got = v
					}
				}
				if got != tc.answer || res.deflate != (tc.answer != "") {
					t.Fatalf("extension answer %q (deflate %v), want %q", got, res.deflate, tc.answer)
				}
			})
		}
	}
}
