package gateway

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// TestDecodeServerCommand: what the command channel carries is checked as
// the API checks a call, since anything with access to the broker can
// publish there.
func TestDecodeServerCommand(t *testing.T) {
	enc := func(cmd any) []byte {
		b, err := msgpack.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"disconnect", enc(serverCommand{Op: opDisconnect, From: "n1", User: "42", Code: 4503, Reason: "banned"}), true},
		{"unsubscribe", enc(serverCommand{Op: opUnsubscribe, From: "n1", Client: "c1", Channel: "chat:room1"}), true},
		{"every connection", enc(serverCommand{Op: opDisconnect, From: "n1", Code: 4000}), false},
		{"unknown operation", enc(serverCommand{Op: "publish", User: "42"}), false},
		{"close code 1000", enc(serverCommand{Op: opDisconnect, User: "42", Code: 1000}), false},
		{"no close code", enc(serverCommand{Op: opDisconnect, User: "42"}), false},
		{"reason too long", enc(serverCommand{Op: opDisconnect, User: "42", Code: 4000, Reason: strings.Repeat("x", 124)}), false},
		{"reason not UTF-8", enc(serverCommand{Op: opDisconnect, User: "42", Code: 4000, Reason: "\xff"}), false},
		{"bad channel", enc(serverCommand{Op: opUnsubscribe, User: "42", Channel: "$wsgate:commands"}), false},
		{"not msgpack", []byte{0xc1}, false},
		{"a string", enc("disconnect"), false},
		{"empty", nil, false},
	} {
		_, err := decodeServerCommand(tc.data, 128)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errBadCommand) {
			t.Errorf("%s: err %v is not errBadCommand", tc.name, err)
		}
	}
}

// FuzzServerCommand: no input panics the decoder, and whatever it accepts
// is a command the API could have sent.
func FuzzServerCommand(f *testing.F) {
	for _, cmd := range []serverCommand{
		{Op: opDisconnect, From: "n1", User: "42", Code: 4503, Reason: "banned"},
		{Op: opUnsubscribe, From: "n1", Client: "c1", Channel: "chat:room1"},
	} {
		b, _ := msgpack.Marshal(cmd)
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa2, 'o', 'p', 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := decodeServerCommand(data, 128)
		if err != nil {
			return
		}
		if cmd.User == "" && cmd.Client == "" {
			t.Fatalf("accepted %+v", cmd)
		}
		switch cmd.Op {
		case opDisconnect:
			if cmd.Code < 4000 || cmd.Code > 4999 || len(cmd.Reason) > maxCloseReason || !utf8.ValidString(cmd.Reason) {
				t.Fatalf("accepted %+v", cmd)
			}
		case opUnsubscribe:
			if cmd.Channel == "" {
				t.Fatalf("accepted %+v", cmd)
			}
		default:
			t.Fatalf("accepted %+v", cmd)
		}
	})
}
