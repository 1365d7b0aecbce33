package deflate

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/wsgate/wsgate/gateway/deflate/deflatetest"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// repeated is n bytes made of a random block of n/2 bytes said twice: the
// compressor's best match for the second half is n/2 back, the longest
// reach a message of n bytes can provoke that compresses.
func repeated(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	half := make([]byte, n/2)
	for i := range half {
		half[i] = byte(r.IntN(256))
	}
	p := append(append(make([]byte, 0, n), half...), half...)
	for len(p) < n {
		p = append(p, half[len(p)%len(half)])
	}
	return p
}

// TestWindowHonoured: for every window N, a message of at most 2^N bytes
// — however it repeats itself — compresses (Frame, as the hub and replies
// do) into back-references no longer than 2^N, checked by decoding every
// distance (deflatetest); and the bound is not vacuous: a message twice
// as long as the window does reach past it, which is why Fits refuses it.
func TestWindowHonoured(t *testing.T) {
	for n := minWindowBits; n <= maxWindowBits; n++ {
		w, size := Window(n), 1<<n
		compressed := 0
		for _, p := range [][]byte{repeated(uint64(n), size), repeated(uint64(n), size-1), publication[:min(size, len(publication))],
			bytes.Repeat([]byte("ab"), size/2)} {
			if !w.Fits(len(p)) {
				t.Fatalf("window %d refuses %d bytes", n, len(p))
			}
			frame, ok := Frame(wsframe.OpText, p)
			if !ok {
				continue // does not shrink: sent plain anyway
			}
			if frame[0] != 0x80|RSV1|byte(wsframe.OpText) {
				t.Fatalf("window %d: first byte %#x", n, frame[0])
			}
			out, dist, err := deflatetest.Inflate(framePayload(frame))
			if err != nil || !bytes.Equal(out, p) {
				t.Fatalf("window %d, %d bytes: inflated %d bytes, err %v", n, len(p), len(out), err)
			}
			if dist > size {
				t.Fatalf("window %d, %d bytes: a back-reference %d bytes back", n, len(p), dist)
			}
			compressed++
		}
		if compressed < 3 {
			t.Fatalf("window %d: only %d of the messages compressed", n, compressed)
		}
		if n == maxWindowBits {
			continue // the compressor's own window: nothing reaches past it
		}
		long := repeated(uint64(n), 2*size+2)
		_, dist, err := deflatetest.Inflate(Compress(nil, long))
		if err != nil || dist <= size || w.Fits(len(long)) {
			t.Fatalf("window %d, %d bytes: longest distance %d (err %v), fits %v", n, len(long), dist, err, w.Fits(len(long)))
		}
	}
}

// framePayload is the payload of an unmasked frame.
func framePayload(frame []byte) []byte {
	switch frame[1] & 0x7f {
	case 126:
		return frame[4:]
	case 127:
		return frame[10:]
	}
	return frame[2:]
}

// FuzzWindowBound: whatever the message, when it fits a window its
// compressed form (as Frame builds it) inflates to it and uses no
// back-reference longer than the window.
func FuzzWindowBound(f *testing.F) {
	f.Add([]byte("abcabcabc"), uint8(8))
	f.Add(repeated(3, 512), uint8(9))
	f.Add(publication, uint8(11))
	f.Fuzz(func(t *testing.T, p []byte, bits uint8) {
		w := Window(minWindowBits + bits%(maxWindowBits-minWindowBits+1))
		if !w.Fits(len(p)) {
			p = p[:1<<w]
		}
		frame, ok := Frame(wsframe.OpBinary, p)
		if !ok {
			return
		}
		out, dist, err := deflatetest.Inflate(framePayload(frame))
		if err != nil || !bytes.Equal(out, p) || dist > 1<<w {
			t.Fatalf("window %d, %d bytes: distance %d, %d bytes out, err %v", w, len(p), dist, len(out), err)
		}
	})
}
