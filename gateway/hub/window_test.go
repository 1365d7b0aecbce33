package hub

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/deflate/deflatetest"
)

// repeatingData is n bytes of a random block said twice: compressible,
// and its best matches reach n/2 back.
func repeatingData(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	half := make([]byte, (n+1)/2)
	for i := range half {
		half[i] = 'a' + byte(r.IntN(26))
	}
	return append(append([]byte{}, half...), half[:n-len(half)]...)
}

// TestWindowFormats: subscribers that limited the server's window
// (server_max_window_bits 8–14) get, per publication, the shared
// compressed frame when the plain payload fits their window and the shared
// plain frame otherwise; every compressed frame they get uses no
// back-reference longer than their window (decoded distance by distance);
// and each publication is still compressed once per encoding.
func TestWindowFormats(t *testing.T) {
	sizes := []int{200, 300, 700, 1200, 2500, 5000, 9000, 17000}
	h := New(Config{Compress: func(string) bool { return true }, CompressMinBytes: 64}, &nopBroker{})
	h.Start()
	full := &deflateSub{window: 15}
	plain := &deflateSub{}
	jsonFull := &deflateSub{fakeSub: fakeSub{enc: codec.JSON}, window: 15}
	subs := []*deflateSub{full, plain, jsonFull}
	for w := deflate.Window(8); w <= 14; w++ {
		subs = append(subs, &deflateSub{window: w}, &deflateSub{fakeSub: fakeSub{enc: codec.JSON}, window: w})
	}
	for _, s := range subs {
		must(t, h.Subscribe("c", s))
	}
	var datas [][]byte
	for i, n := range sizes {
		datas = append(datas, repeatingData(n))
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: uint64(i + 1), Epoch: []byte("e"), Data: datas[i]}) {
		}
	}
	h.Close()
	if got, want := h.Stats().Compressed.Load(), int64(2*len(sizes)); got != want {
		t.Fatalf("compressed %d frames, want %d (once per publication and encoding)", got, want)
	}
	var zs, ps int
	for _, s := range subs[3:] {
		ref, refPlain := full, plain
		if s.enc == codec.JSON {
			ref, refPlain = jsonFull, nil
		}
		for k, f := range s.frames {
			payload := len(ref.frames[k]) - serverHeaderSize(ref.frames[k])
			if ref.frames[k][0]&deflate.RSV1 != 0 {
				payload = len(plainPayload(t, s.enc, ref.frames[k]))
			}
			name := fmt.Sprintf("%s window %d, publication of %d bytes (payload %d)", s.enc, s.window, sizes[k], payload)
			if checkWindowFrame(t, name, s, f, ref.frames[k], refPlain, k, payload) {
				zs++
			} else {
				ps++
			}
			if data, _ := decodePush(t, s.enc, f); !bytes.Equal(data, datas[k]) {
				t.Fatalf("%s: data altered", name)
			}
		}
	}
	if zs < 20 || ps < 20 {
		t.Fatalf("windowed subscribers got %d compressed and %d plain frames: the sizes test little", zs, ps)
	}
	t.Logf("windowed subscribers got %d compressed and %d plain frames", zs, ps)
}

// checkWindowFrame checks one frame a windowed subscriber got: the shared
// compressed frame if the payload fits and distances within the window,
// else plain (the plain subscriber's very frame for msgpack). It reports
// whether f was compressed.
func checkWindowFrame(t *testing.T, name string, s *deflateSub, f, compressed []byte, plain *deflateSub, k, payload int) bool {
	t.Helper()
	fits := payload <= 1<<s.window
	if got := f[0]&deflate.RSV1 != 0; got != fits {
		t.Fatalf("%s: compressed %v, want %v", name, got, fits)
	}
	if fits {
		if &f[0] != &compressed[0] {
			t.Fatalf("%s: not the shared compressed frame", name)
		}
		_, dist, err := deflatetest.Inflate(f[serverHeaderSize(f):])
		if err != nil || dist > 1<<s.window {
			t.Fatalf("%s: longest back-reference %d (err %v)", name, dist, err)
		}
		return true
	}
	if plain != nil && &f[0] != &plain.frames[k][0] {
		t.Fatalf("%s: not the shared plain frame", name)
	}
	return false
}

// plainPayload inflates a compressed frame's payload.
func plainPayload(t *testing.T, enc codec.Encoding, f []byte) []byte {
	t.Helper()
	out, err := deflate.Inflate(nil, f[serverHeaderSize(f):], 1<<20)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return out
}

// TestWindowNothingFits: when a channel's only compressing subscribers
// have a window too small for every publication, nothing is compressed at
// all, and they get the plain frames.
func TestWindowNothingFits(t *testing.T) {
	h := New(Config{Compress: func(string) bool { return true }, CompressMinBytes: 64}, &nopBroker{})
	h.Start()
	w9 := &deflateSub{window: 9}
	plain := &deflateSub{}
	must(t, h.Subscribe("c", w9))
	must(t, h.Subscribe("c", plain))
	for i := 1; i <= 3; i++ {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: uint64(i), Data: repeatingData(1000 * i)}) {
		}
	}
	h.Close()
	if got := h.Stats().Compressed.Load(); got != 0 {
		t.Fatalf("compressed %d frames for nobody", got)
	}
	for k, f := range w9.frames {
		if &f[0] != &plain.frames[k][0] {
			t.Fatalf("frame %d is not the shared plain frame", k)
		}
	}
}
