package deflate

import (
	"strings"
	"testing"
)

// TestNegotiateMatrix covers offers with and without window bits and
// takeover parameters, several offers, and malformed parameters: each row
// is the request's header values and the expected response ("" declined).
func TestNegotiateMatrix(t *testing.T) {
	const plain, window = responsePlain, responseWindow
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"no header", nil, ""},
		{"empty", []string{""}, ""},
		{"bare", []string{"permessage-deflate"}, plain},
		{"browser default", []string{"permessage-deflate; client_max_window_bits"}, plain},
		{"upper case name", []string{"Permessage-Deflate"}, plain},
		{"both takeovers", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, plain},
		{"client bits value", []string{"permessage-deflate; client_max_window_bits=10"}, plain},
		{"server bits 15", []string{"permessage-deflate; server_max_window_bits=15"}, window},
		{"server bits quoted", []string{`permessage-deflate; server_max_window_bits="15"`}, window},
		{"server bits 10 declined", []string{"permessage-deflate; server_max_window_bits=10"}, ""},
		{"server bits 10 then plain", []string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"}, plain},
		{"second header line", []string{"x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits"}, plain},
		{"other extension first", []string{"foo; a=1, permessage-deflate"}, plain},
		{"server bits no value", []string{"permessage-deflate; server_max_window_bits"}, ""},
		{"server bits 16", []string{"permessage-deflate; server_max_window_bits=16"}, ""},
		{"server bits 7", []string{"permessage-deflate; server_max_window_bits=7"}, ""},
		{"server bits leading zero", []string{"permessage-deflate; server_max_window_bits=09"}, ""},
		{"server bits not a number", []string{"permessage-deflate; server_max_window_bits=abc"}, ""},
		{"client bits 20", []string{"permessage-deflate; client_max_window_bits=20"}, ""},
		{"client bits empty value", []string{"permessage-deflate; client_max_window_bits="}, ""},
		{"takeover with value", []string{"permessage-deflate; server_no_context_takeover=1"}, ""},
		{"duplicate parameter", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, ""},
		{"unknown parameter", []string{"permessage-deflate; level=9"}, ""},
		{"unknown then good", []string{"permessage-deflate; level=9, permessage-deflate; client_max_window_bits"}, plain},
		{"quoted comma", []string{`permessage-deflate; x="a,b", permessage-deflate`}, plain},
		{"unterminated quote", []string{`permessage-deflate; server_max_window_bits="15`}, ""},
		{"escaped quoted value", []string{`permessage-deflate; server_max_window_bits="1\5"`}, window},
		{"spaces", []string{"  permessage-deflate ;  client_max_window_bits = 15 "}, plain},
		{"empty params", []string{"permessage-deflate;;"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var values [][]byte
			for _, v := range tc.values {
				values = append(values, []byte(v))
			}
			got, ok := Negotiate(values)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("Negotiate(%q) = %q, %v; want %q", tc.values, got, ok, tc.want)
			}
		})
	}
}

// FuzzNegotiate checks that any header value is answered without a panic
// and that an accepted offer is always answered with both no-context-
// takeover parameters and nothing the offer could not have asked for.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate", "permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_max_window_bits=15; client_no_context_takeover",
		`foo, permessage-deflate; x="a,\"b"`, "permessage-deflate; server_max_window_bits=8",
	} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got, ok := Negotiate([][]byte{[]byte(a), []byte(b)})
		if !ok {
			if got != "" {
				t.Fatalf("declined with a response %q", got)
			}
			return
		}
		if got != responsePlain && got != responseWindow {
			t.Fatalf("unexpected response %q", got)
		}
		if got == responseWindow && !strings.Contains(strings.ToLower(a+b), paramServerBits) {
			t.Fatalf("server_max_window_bits answered to an offer without it: %q %q", a, b)
		}
	})
}
