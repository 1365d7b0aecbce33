package wsframe

import (
	"bytes"
	"fmt"
	"testing"
	"unicode/utf8"
)

// recorder is a Sink that writes down everything it receives.
type recorder struct{ events []string }

func (r *recorder) OnMessage(op Opcode, p []byte) error {
	r.events = append(r.events, fmt.Sprintf("msg %d %q", op, p))
	return nil
}
func (r *recorder) OnPing(p []byte) { r.events = append(r.events, fmt.Sprintf("ping %q", p)) }
func (r *recorder) OnPong(p []byte) { r.events = append(r.events, fmt.Sprintf("pong %q", p)) }
func (r *recorder) OnClose(code uint16, reason []byte) {
	r.events = append(r.events, fmt.Sprintf("close %d %q", code, reason))
}

// feed decodes input delivered in chunks of the given sizes, the way a
// connection does: leftover bytes are prepended to the next chunk. It
// returns the events and the close code of a protocol error (0: none).
func feed(t *testing.T, limit int, input []byte, chunk func(i int) int) ([]string, uint16) {
	d := &Decoder{MaxMessage: limit}
	r := &recorder{}
	var leftover []byte
	for i := 0; len(input) > 0; i++ {
		k := min(max(1, chunk(i)), len(input))
		buf := append(append([]byte{}, leftover...), input[:k]...)
		input = input[k:]
		n, err := d.Decode(buf, r)
		if err != nil {
			return r.events, err.(*Error).Code
		}
		leftover = buf[n:]
		if len(leftover) > MaxLeftover {
			t.Fatalf("decoder left %d bytes (max %d)", len(leftover), MaxLeftover)
		}
	}
	return r.events, 0
}

// checkEvents asserts what any accepted input must satisfy.
func checkEvents(t *testing.T, limit int, events []string) {
	for _, e := range events {
		var op int
		var p string
		if _, err := fmt.Sscanf(e, "msg %d %q", &op, &p); err == nil {
			if len(p) > limit {
				t.Fatalf("message of %d bytes over the %d limit", len(p), limit)
			}
			if Opcode(op) == OpText && !utf8.ValidString(p) {
				t.Fatalf("invalid UTF-8 text delivered: %q", p)
			}
		}
	}
}

// FuzzDecoder checks that any byte stream, split anywhere, decodes to the
// same events and the same error as when it arrives in one piece, never
// leaves more than MaxLeftover bytes, never delivers an oversized message or
// invalid UTF-8 text, and never panics.
func FuzzDecoder(f *testing.F) {
	for _, seed := range decoderSeeds() {
		f.Add(seed, uint8(1), uint8(7))
	}
	f.Fuzz(func(t *testing.T, input []byte, a, b uint8) {
		const limit = 1 << 10
		whole, wholeErr := feed(t, limit, bytes.Clone(input), func(int) int { return len(input) })
		sizes := []int{int(a), int(b)}
		split, splitErr := feed(t, limit, bytes.Clone(input), func(i int) int { return sizes[i%2] })
		if wholeErr != splitErr {
			t.Fatalf("error code differs: whole %d, split %d", wholeErr, splitErr)
		}
		// A split stream may report a message whose error the whole stream
		// caught earlier (fail fast works on what has arrived), so compare
		// only when both succeeded.
		if wholeErr == 0 && fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("events differ:\nwhole %v\nsplit %v", whole, split)
		}
		checkEvents(t, limit, whole)
		checkEvents(t, limit, split)
	})
}

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op Opcode, payload []byte) []byte {
	return AppendClientFrame(nil, fin, op, [4]byte{0x12, 0x34, 0x56, 0x78}, payload)
}

func decoderSeeds() [][]byte {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	return [][]byte{
		clientFrame(true, OpText, []byte("hello")),
		clientFrame(true, OpBinary, bytes.Repeat([]byte{0xAB}, 300)),
		cat(clientFrame(false, OpText, []byte("κό")), clientFrame(true, OpPing, []byte("p")),
			clientFrame(true, OpContinuation, []byte("σμε"))),
		clientFrame(true, OpText, []byte{0xCE, 0xBA, 0xE1, 0xBD}), // truncated UTF-8
		clientFrame(true, OpClose, []byte{0x03, 0xE8, 'o', 'k'}),
		clientFrame(true, OpClose, []byte{0x03}),
		clientFrame(true, OpPing, bytes.Repeat([]byte("x"), 126)),
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},                      // unmasked
		{0xC1, 0x80, 0, 0, 0, 0},                                   // RSV1
		{0x83, 0x80, 0, 0, 0, 0},                                   // reserved opcode
		{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},        // length MSB
		clientFrame(true, OpBinary, bytes.Repeat([]byte{1}, 2000)), // over the fuzz limit
		cat(clientFrame(true, OpPong, nil), clientFrame(true, OpText, nil)),
	}
}

// TestDecoderSplitsEverywhere runs every seed split at every position.
func TestDecoderSplitsEverywhere(t *testing.T) {
	for i, seed := range decoderSeeds() {
		whole, wholeErr := feed(t, 1<<10, bytes.Clone(seed), func(int) int { return len(seed) })
		for size := 1; size < len(seed); size++ {
			split, splitErr := feed(t, 1<<10, bytes.Clone(seed), func(int) int { return size })
			if splitErr != wholeErr || (wholeErr == 0 && fmt.Sprint(split) != fmt.Sprint(whole)) {
				t.Fatalf("seed %d split by %d: %v/%d vs whole %v/%d", i, size, split, splitErr, whole, wholeErr)
			}
		}
	}
}
