package loadclient

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

type recorded struct {
	msgs   []string // "op:payload"
	pings  []string
	closes []uint16
}

func (r *recorded) onMessage(op wsframe.Opcode, p []byte) {
	r.msgs = append(r.msgs, fmt.Sprintf("%d:%s", op, p))
}
func (r *recorded) onPing(p []byte)     { r.pings = append(r.pings, string(p)) }
func (r *recorded) onClose(code uint16) { r.closes = append(r.closes, code) }

func frag(fin bool, op wsframe.Opcode, payload string) []byte {
	return append(wsframe.AppendHeader(nil, fin, op, len(payload)), payload...)
}

// stream is a mix of everything a server may send.
func stream() []byte {
	big := bytes.Repeat([]byte("x"), 70000) // 64-bit length
	mid := bytes.Repeat([]byte("m"), 300)   // 16-bit length
	var b []byte
	b = append(b, wsframe.Frame(wsframe.OpText, []byte("hello"))...)
	b = append(b, frag(false, wsframe.OpBinary, "ab")...)
	b = append(b, wsframe.Frame(wsframe.OpPing, []byte("p1"))...) // control between fragments
	b = append(b, frag(false, wsframe.OpContinuation, "cd")...)
	b = append(b, frag(true, wsframe.OpContinuation, "ef")...)
	b = append(b, wsframe.Frame(wsframe.OpBinary, big)...)
	b = append(b, wsframe.Frame(wsframe.OpText, mid)...)
	b = append(b, wsframe.Frame(wsframe.OpText, nil)...)
	b = append(b, wsframe.Frame(wsframe.OpPong, []byte("ignored"))...)
	b = append(b, wsframe.CloseFrame(4008, "slow")...)
	b = append(b, wsframe.Frame(wsframe.OpText, []byte("after close"))...)
	return b
}

func wantStream() recorded {
	return recorded{
		msgs: []string{
			"1:hello", "2:abcdef",
			"2:" + string(bytes.Repeat([]byte("x"), 70000)),
			"1:" + string(bytes.Repeat([]byte("m"), 300)),
			"1:",
		},
		pings:  []string{"p1"},
		closes: []uint16{4008},
	}
}

// TestFrameReaderSplits feeds the same stream cut into chunks of every
// size: the reader must find the same messages whatever the read sizes.
func TestFrameReaderSplits(t *testing.T) {
	data := stream()
	want := wantStream()
	for _, chunk := range []int{1, 2, 3, 5, 9, 10, 11, 127, 1000, 65536, len(data)} {
		r := frameReader{maxMessage: 1 << 20}
		var got recorded
		for off := 0; off < len(data); off += chunk {
			// A fresh copy per read, as a scratch buffer would be reused.
			p := bytes.Clone(data[off:min(off+chunk, len(data))])
			if err := r.feed(p, &got); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			clear(p)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunk %d: got %d msgs %v pings %v closes %v", chunk, len(got.msgs), got.pings, got.closes, got.closes)
		}
	}
}

func TestFrameReaderViolations(t *testing.T) {
	masked := wsframe.Frame(wsframe.OpText, []byte("x"))
	masked[1] |= 0x80
	rsv := wsframe.Frame(wsframe.OpText, []byte("x"))
	rsv[0] |= 0x40
	tests := []struct {
		name string
		in   []byte
		code uint16
	}{
		{"masked", masked, wsframe.CloseProtocolError},
		{"reserved bits", rsv, wsframe.CloseProtocolError},
		{"unknown opcode", frag(true, 3, ""), wsframe.CloseProtocolError},
		{"stray continuation", frag(true, wsframe.OpContinuation, "x"), wsframe.CloseProtocolError},
		{"nested message", append(frag(false, wsframe.OpText, "a"), frag(true, wsframe.OpText, "b")...), wsframe.CloseProtocolError},
		{"fragmented ping", frag(false, wsframe.OpPing, ""), wsframe.CloseProtocolError},
		{"long ping", wsframe.Frame(wsframe.OpPing, make([]byte, 126)), wsframe.CloseProtocolError},
		{"too big", wsframe.Frame(wsframe.OpBinary, make([]byte, 101)), wsframe.CloseTooBig},
		{"too big fragmented", append(frag(false, wsframe.OpBinary, string(make([]byte, 60))), frag(true, 0, string(make([]byte, 60)))...), wsframe.CloseTooBig},
		{"bad close code", wsframe.Frame(wsframe.OpClose, []byte{0x03, 0xEE}), wsframe.CloseProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := frameReader{maxMessage: 100}
			err := r.feed(tt.in, &recorded{})
			var ferr *wsframe.Error
			if !errors.As(err, &ferr) || ferr.Code != tt.code {
				t.Fatalf("err = %v, want close code %d", err, tt.code)
			}
		})
	}
}

func TestCloseWithoutCode(t *testing.T) {
	r := frameReader{maxMessage: 100}
	var got recorded
	if err := r.feed(wsframe.Frame(wsframe.OpClose, nil), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.closes) != 1 || got.closes[0] != wsframe.CloseNoStatus {
		t.Fatalf("closes = %v", got.closes)
	}
}

// TestClientFrameMasked checks our frames with wsgate's own client-frame
// decoder: masked, well-formed, payload intact.
func TestClientFrameMasked(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'z'}, n)
		f := ClientFrame(wsframe.OpBinary, payload)
		if f[1]&0x80 == 0 {
			t.Fatalf("len %d: mask bit not set", n)
		}
		d := wsframe.Decoder{MaxMessage: 1 << 20}
		sink := &decoderSink{}
		if _, err := d.Decode(f, sink); err != nil {
			t.Fatalf("len %d: %v", n, err)
		}
		if len(sink.msgs) != 1 || !bytes.Equal(sink.msgs[0], payload) {
			t.Fatalf("len %d: decoded %d messages", n, len(sink.msgs))
		}
	}
	d := wsframe.Decoder{MaxMessage: 1 << 20}
	sink := &decoderSink{}
	if _, err := d.Decode(clientCloseFrame(4001), sink); err != nil || sink.close != 4001 {
		t.Fatalf("close frame: err %v, code %d", err, sink.close)
	}
}

type decoderSink struct {
	msgs  [][]byte
	close uint16
}

func (s *decoderSink) OnMessage(_ wsframe.Opcode, p []byte) error {
	s.msgs = append(s.msgs, bytes.Clone(p))
	return nil
}
func (s *decoderSink) OnPing([]byte)                 {}
func (s *decoderSink) OnPong([]byte)                 {}
func (s *decoderSink) OnClose(code uint16, _ []byte) { s.close = code }
