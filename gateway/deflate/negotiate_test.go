package deflate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestNegotiateMatrix covers offers with and without window bits and
// takeover parameters, several offers, and malformed parameters: each row
// is the request's header values, the expected response ("" declined) and
// the window agreed.
func TestNegotiateMatrix(t *testing.T) {
	const plain = ResponsePlain
	win := func(n int) string { return fmt.Sprintf("%s; server_max_window_bits=%d", plain, n) }
	type row struct {
		name   string
		values []string
		want   string
		window Window
	}
	cases := []row{
		{"no header", nil, "", 0},
		{"empty", []string{""}, "", 0},
		{"bare", []string{"permessage-deflate"}, plain, 15},
		{"browser default", []string{"permessage-deflate; client_max_window_bits"}, plain, 15},
		{"upper case name", []string{"Permessage-Deflate"}, plain, 15},
		{"both takeovers", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, plain, 15},
		{"client bits value", []string{"permessage-deflate; client_max_window_bits=10"}, plain, 15},
		{"client bits 8", []string{"permessage-deflate; client_max_window_bits=8"}, plain, 15},
		{"client bits 15", []string{"permessage-deflate; client_max_window_bits=15"}, plain, 15},
		{"client bits quoted", []string{`permessage-deflate; client_max_window_bits="9"`}, plain, 15},
		{"server bits quoted", []string{`permessage-deflate; server_max_window_bits="15"`}, win(15), 15},
		{"server bits quoted 9", []string{`permessage-deflate; server_max_window_bits="9"`}, win(9), 9},
		{"server and client bits", []string{"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"}, win(10), 10},
		{"server bits with everything", []string{"permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits"}, win(12), 12},
		{"server bits 10 then plain", []string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"}, win(10), 10},
		{"malformed then server bits 9", []string{"permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits=9"}, win(9), 9},
		{"second header line", []string{"x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits"}, plain, 15},
		{"other extension first", []string{"foo; a=1, permessage-deflate"}, plain, 15},
		{"server bits no value", []string{"permessage-deflate; server_max_window_bits"}, "", 0},
		{"server bits empty value", []string{"permessage-deflate; server_max_window_bits="}, "", 0},
		{"server bits 16", []string{"permessage-deflate; server_max_window_bits=16"}, "", 0},
		{"server bits 7", []string{"permessage-deflate; server_max_window_bits=7"}, "", 0},
		{"server bits 0", []string{"permessage-deflate; server_max_window_bits=0"}, "", 0},
		{"server bits leading zero", []string{"permessage-deflate; server_max_window_bits=09"}, "", 0},
		{"server bits not a number", []string{"permessage-deflate; server_max_window_bits=abc"}, "", 0},
		{"server bits negative", []string{"permessage-deflate; server_max_window_bits=-9"}, "", 0},
		{"server bits twice", []string{"permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"}, "", 0},
		{"client bits 20", []string{"permessage-deflate; client_max_window_bits=20"}, "", 0},
		{"client bits 7", []string{"permessage-deflate; client_max_window_bits=7"}, "", 0},
		{"client bits empty value", []string{"permessage-deflate; client_max_window_bits="}, "", 0},
		{"takeover with value", []string{"permessage-deflate; server_no_context_takeover=1"}, "", 0},
		{"duplicate parameter", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, "", 0},
		{"unknown parameter", []string{"permessage-deflate; level=9"}, "", 0},
		{"unknown then good", []string{"permessage-deflate; level=9, permessage-deflate; client_max_window_bits"}, plain, 15},
		{"quoted comma", []string{`permessage-deflate; x="a,b", permessage-deflate`}, plain, 15},
		{"unterminated quote", []string{`permessage-deflate; server_max_window_bits="15`}, "", 0},
		{"escaped quoted value", []string{`permessage-deflate; server_max_window_bits="1\5"`}, win(15), 15},
		{"spaces", []string{"  permessage-deflate ;  client_max_window_bits = 15 "}, plain, 15},
		{"spaces around server bits", []string{"permessage-deflate ; server_max_window_bits = 11 "}, win(11), 11},
		{"empty params", []string{"permessage-deflate;;"}, "", 0},
	}
	for n := 8; n <= 15; n++ {
		cases = append(cases, row{fmt.Sprintf("server bits %d", n),
			[]string{fmt.Sprintf("permessage-deflate; server_max_window_bits=%d", n)}, win(n), Window(n)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var values [][]byte
			for _, v := range tc.values {
				values = append(values, []byte(v))
			}
			got, w := Negotiate(values)
			if got != tc.want || w != tc.window {
				t.Fatalf("Negotiate(%q) = %q, window %d; want %q, window %d", tc.values, got, w, tc.want, tc.window)
			}
			if got != "" && !slices.Contains(Responses(), got) {
				t.Fatalf("response %q is not among Responses()", got)
			}
		})
	}
}

// TestWindowFits: a message may go out compressed when it is no longer
// than the client's window (no back-reference can then exceed it); window
// 15 is compress/flate's own, so everything fits; NoWindow fits nothing.
func TestWindowFits(t *testing.T) {
	cases := []struct {
		w    Window
		n    int
		want bool
	}{
		{NoWindow, 0, false}, {NoWindow, 100, false},
		{8, 256, true}, {8, 257, false},
		{9, 512, true}, {9, 513, false},
		{14, 1 << 14, true}, {14, 1<<14 + 1, false},
		{15, 1 << 15, true}, {15, 1 << 20, true},
	}
	for _, tc := range cases {
		if got := tc.w.Fits(tc.n); got != tc.want {
			t.Errorf("Window(%d).Fits(%d) = %v, want %v", tc.w, tc.n, got, tc.want)
		}
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
		got, w := Negotiate([][]byte{[]byte(a), []byte(b)})
		if !w.Negotiated() {
			if got != "" {
				t.Fatalf("declined with a response %q", got)
			}
			return
		}
		if w < minWindowBits || w > maxWindowBits || !slices.Contains(Responses(), got) {
			t.Fatalf("unexpected response %q, window %d", got, w)
		}
		stated := strings.Contains(got, paramServerBits)
		if stated && (!strings.HasSuffix(got, fmt.Sprintf("=%d", w)) || !strings.Contains(strings.ToLower(a+b), paramServerBits)) {
			t.Fatalf("response %q, window %d, to an offer %q %q", got, w, a, b)
		}
		if !stated && w != maxWindowBits {
			t.Fatalf("window %d without server_max_window_bits in the response", w)
		}
	})
}
