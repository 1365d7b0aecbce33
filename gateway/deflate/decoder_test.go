package deflate

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// maskedFrame builds a client frame, RSV1 set when rsv1.
func maskedFrame(fin bool, op wsframe.Opcode, rsv1 bool, payload []byte) []byte {
	out := wsframe.AppendClientFrame(nil, fin, op, [4]byte{0x9a, 0x01, 0x7c, 0x33}, payload)
	if rsv1 {
		out[0] |= RSV1
	}
	return out
}

type sink struct{ msgs []string }

func (s *sink) OnMessage(op wsframe.Opcode, p []byte) error {
	s.msgs = append(s.msgs, fmt.Sprintf("%d:%s", op, p))
	return nil
}
func (s *sink) OnPing([]byte)          {}
func (s *sink) OnPong([]byte)          {}
func (s *sink) OnClose(uint16, []byte) {}

// decode runs input through a decoder (negotiated or not), whole and then
// one byte at a time, and returns the messages and the close code.
func decode(t *testing.T, negotiated bool, limit int, input []byte) ([]string, uint16) {
	t.Helper()
	var results [2]string
	var msgs []string
	var code uint16
	for i, step := range []int{len(input), 1} {
		d := &wsframe.Decoder{MaxMessage: limit}
		if negotiated {
			d.Inflate = Inflate
		}
		s := &sink{}
		code = 0
		var left []byte
		for rest := bytes.Clone(input); len(rest) > 0 && code == 0; {
			k := min(step, len(rest))
			buf := append(left, rest[:k]...)
			rest = rest[k:]
			n, err := d.Decode(buf, s)
			var ferr *wsframe.Error
			if errors.As(err, &ferr) {
				code = ferr.Code
			} else if err != nil {
				t.Fatal(err)
			}
			left = append([]byte(nil), buf[n:]...)
		}
		msgs = s.msgs
		results[i] = fmt.Sprint(msgs, code)
	}
	if results[0] != results[1] {
		t.Fatalf("whole %s, byte by byte %s", results[0], results[1])
	}
	return msgs, code
}

// TestDeflateInboundRules covers every inbound rule of RFC 7692 as wsgate
// applies it, at the decoder (gateway/deflate_test.go does it on sockets).
func TestDeflateInboundRules(t *testing.T) {
	z := Compress(nil, publication)
	half := len(z) / 2
	// Random bytes grow when compressed: a client that compresses every
	// message sends more than the limit for a message at the limit.
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(uint32(i)*2654435761>>13 ^ uint32(i)*40503)
	}
	zNoise := Compress(nil, noise)
	if len(zNoise) <= len(noise) {
		t.Fatalf("noise compressed from %d to %d bytes: want it to grow", len(noise), len(zNoise))
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name       string
		negotiated bool
		limit      int
		input      []byte
		want       string // first message, "" none
		code       uint16
	}{
		{"compressed text", true, 64 << 10, maskedFrame(true, wsframe.OpText, true, z), "1:" + string(publication), 0},
		{"compressed binary", true, 64 << 10, maskedFrame(true, wsframe.OpBinary, true, z), "2:" + string(publication), 0},
		{"plain after negotiation", true, 64 << 10, maskedFrame(true, wsframe.OpText, false, []byte("hi")), "1:hi", 0},
		{"fragmented compressed", true, 64 << 10, cat(maskedFrame(false, wsframe.OpText, true, z[:half]),
			maskedFrame(true, wsframe.OpPing, false, nil), maskedFrame(true, wsframe.OpContinuation, false, z[half:])), "1:" + string(publication), 0},
		{"RSV1 not negotiated", false, 64 << 10, maskedFrame(true, wsframe.OpText, true, z), "", wsframe.CloseProtocolError},
		{"RSV1 on ping", true, 64 << 10, maskedFrame(true, wsframe.OpPing, true, nil), "", wsframe.CloseProtocolError},
		{"RSV1 on close", true, 64 << 10, maskedFrame(true, wsframe.OpClose, true, []byte{3, 232}), "", wsframe.CloseProtocolError},
		{"RSV1 on continuation", true, 64 << 10, cat(maskedFrame(false, wsframe.OpText, true, z[:half]),
			maskedFrame(true, wsframe.OpContinuation, true, z[half:])), "", wsframe.CloseProtocolError},
		{"RSV2", true, 64 << 10, []byte{0xA1, 0x80, 0, 0, 0, 0}, "", wsframe.CloseProtocolError},
		{"invalid deflate data", true, 64 << 10, maskedFrame(true, wsframe.OpBinary, true, []byte{0xff, 0xff, 0xff, 0xff}), "", wsframe.CloseInvalidPayload},
		{"truncated deflate data", true, 64 << 10, maskedFrame(true, wsframe.OpBinary, true, z[:half]), "", wsframe.CloseInvalidPayload},
		{"inflated text not UTF-8", true, 64 << 10, maskedFrame(true, wsframe.OpText, true, Compress(nil, []byte{0xce, 0xff})), "", wsframe.CloseInvalidPayload},
		{"inflates past the limit", true, 1000, maskedFrame(true, wsframe.OpText, true, z), "", wsframe.CloseTooBig},
		{"compressed at the limit", true, len(publication), maskedFrame(true, wsframe.OpText, true, z), "1:" + string(publication), 0},
		{"incompressible data at the limit, sent compressed", true, len(noise), maskedFrame(true, wsframe.OpBinary, true, zNoise), "2:" + string(noise), 0},
		{"compressed frame over the wire bound", true, len(noise) / 2, maskedFrame(true, wsframe.OpBinary, true, zNoise), "", wsframe.CloseTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, code := decode(t, tc.negotiated, tc.limit, tc.input)
			got := ""
			if len(msgs) > 0 {
				got = msgs[0]
			}
			if got != tc.want || code != tc.code {
				t.Fatalf("got %.40q… close %d; want %.40q… close %d", got, code, tc.want, tc.code)
			}
		})
	}
}

// FuzzDeflateDecoder: any byte stream into a decoder that negotiated
// permessage-deflate, whole and one byte at a time, gives the same
// messages and close code, never a message over the limit, never a panic.
func FuzzDeflateDecoder(f *testing.F) {
	z := Compress(nil, []byte(`{"hello":"world","hello again":"world"}`))
	f.Add(maskedFrame(true, wsframe.OpText, true, z))
	f.Add(append(maskedFrame(false, wsframe.OpBinary, true, z[:5]), maskedFrame(true, wsframe.OpContinuation, false, z[5:])...))
	f.Add(maskedFrame(true, wsframe.OpBinary, true, Compress(nil, make([]byte, 5000))))
	f.Add(maskedFrame(true, wsframe.OpPing, true, nil))
	f.Fuzz(func(t *testing.T, input []byte) {
		const limit = 1 << 10
		msgs, _ := decode(t, true, limit, input)
		for _, m := range msgs {
			if len(m) > limit+2 { // "op:" prefix
				t.Fatalf("message of %d bytes over the %d limit", len(m)-2, limit)
			}
		}
	})
}
