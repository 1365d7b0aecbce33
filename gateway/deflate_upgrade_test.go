package gateway

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/gateway/deflate"
)

// TestDeflateNegotiation: the upgrade answers a permessage-deflate offer
// with both no-context-takeover parameters (and the server window when
// offered, echoed), declines malformed offers without failing the
// handshake, and negotiates nothing with compression off or after a
// refusal. The window agreed is recorded for the connection.
func TestDeflateNegotiation(t *testing.T) {
	const ext = "Sec-WebSocket-Extensions: "
	cases := []struct {
		name   string
		off    bool
		hook   bool
		extra  []string
		status string
		answer string // the extension response ("" none)
		window deflate.Window
	}{
		{"browser offer", false, false, []string{ext + "permessage-deflate; client_max_window_bits"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15},
		{"window 15", false, false, []string{ext + "permessage-deflate; server_max_window_bits=15"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15", 15},
		{"window 9", false, false, []string{ext + "permessage-deflate; server_max_window_bits=9"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9", 9},
		{"window 8 and client bits", false, false, []string{ext + "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8", 8},
		{"two header lines", false, false, []string{ext + "permessage-deflate; server_max_window_bits=7", ext + "permessage-deflate; server_max_window_bits=12"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12", 12},
		{"window 16 declined", false, false, []string{ext + "permessage-deflate; server_max_window_bits=16"}, "101", "", 0},
		{"malformed declined", false, false, []string{ext + "permessage-deflate; client_max_window_bits=abc"}, "101", "", 0},
		{"unknown extension", false, false, []string{ext + "x-webkit-deflate-frame"}, "101", "", 0},
		{"no offer", false, false, nil, "101", "", 0},
		{"compression off", true, false, []string{ext + "permessage-deflate; server_max_window_bits=10"}, "101", "", 0},
		{"with a hook", false, true, []string{ext + "permessage-deflate; server_max_window_bits=10"}, "101",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10", 10},
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
				if got != tc.answer || res.window != tc.window {
					t.Fatalf("extension answer %q (window %d), want %q (window %d)", got, res.window, tc.answer, tc.window)
				}
			})
		}
	}
}
