package deflatetest

import (
	"bytes"
	"compress/flate"
	"math/rand/v2"
	"testing"
)

// compress is any RFC 7692 sender: compress/flate at a level, sync-flushed,
// the tail removed.
func compress(t *testing.T, p []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

// TestInflateMatchesFlate: every block type compress/flate writes (stored,
// fixed, dynamic; every level) decodes to the input.
func TestInflateMatchesFlate(t *testing.T) {
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog; "), 2000)
	inputs := [][]byte{nil, []byte("a"), []byte("abcabcabcabc"), text, random(1, 70000), append(random(2, 5000), text[:5000]...)}
	for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, 4, flate.DefaultCompression, flate.BestCompression} {
		for i, p := range inputs {
			out, dist, err := Inflate(compress(t, p, level))
			if err != nil || !bytes.Equal(out, p) {
				t.Fatalf("level %d input %d (%d bytes): %d bytes out, err %v", level, i, len(p), len(out), err)
			}
			if dist > len(p) || (level == flate.NoCompression || level == flate.HuffmanOnly) && dist != 0 {
				t.Fatalf("level %d input %d: distance %d", level, i, dist)
			}
		}
	}
}

// TestInflateDistance: a block of random bytes repeated is coded with
// back-references of exactly its length, and Inflate reports it.
func TestInflateDistance(t *testing.T) {
	for _, n := range []int{300, 1000, 20000} {
		block := random(uint64(n), n)
		p := append(append([]byte{}, block...), block...)
		_, dist, err := Inflate(compress(t, p, flate.DefaultCompression))
		if err != nil || dist != n {
			t.Fatalf("%d random bytes twice: max distance %d, err %v; want %d", n, dist, err, n)
		}
	}
}

// TestInflateRejects: corrupt streams are errors, not silent output.
func TestInflateRejects(t *testing.T) {
	good := compress(t, bytes.Repeat([]byte("abcdef"), 100), flate.DefaultCompression)
	for name, msg := range map[string][]byte{
		"block type 3":        {0x07},
		"stored length":       {0x00, 0x05, 0x00, 0x00, 0x00},
		"truncated":           good[:len(good)/2],
		"distance too far":    matchFirst(),
		"stored past the end": {0x00, 0x10, 0x00, 0xef, 0xff, 'a'},
	} {
		if out, _, err := Inflate(msg); err == nil {
			t.Errorf("%s: no error (%d bytes out)", name, len(out))
		}
	}
}

// matchFirst is a final fixed-code block whose first symbol is a match
// (length 3, distance 1) with nothing before it to copy.
func matchFirst() []byte {
	var out []byte
	var acc, n uint
	put := func(v, bits uint) { // LSB first, as DEFLATE packs fields
		acc |= v << n
		for n += bits; n >= 8; n -= 8 {
			out = append(out, byte(acc))
			acc >>= 8
		}
	}
	code := func(c, bits uint) { // Huffman codes go MSB first
		for i := int(bits) - 1; i >= 0; i-- {
			put(c>>uint(i)&1, 1)
		}
	}
	put(1, 1)  // BFINAL
	put(1, 2)  // fixed codes
	code(1, 7) // symbol 257: length 3
	code(0, 5) // distance code 0: distance 1
	code(0, 7) // end of block
	return append(out, byte(acc))
}
