package hub

import (
	"bytes"
	"os"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/deflate"
)

// document is the benchmark's ~1.5 KB JSON publication.
func document(t testing.TB) []byte {
	b, err := os.ReadFile("../../bench/harness/wire/document.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deflateSub is a fakeSub that negotiated permessage-deflate with a
// window (or not: NoWindow).
type deflateSub struct {
	fakeSub
	window deflate.Window
}

func (s *deflateSub) DeflateWindow() deflate.Window { return s.window }

// Every fake that negotiates compression must still be a Deflater.
var _, _ Deflater = (*deflateSub)(nil), (*countDeflateSub)(nil)

// decodePush reads a server frame the way a client does: RSV1 means
// inflate first. It returns the push's data and whether it was compressed.
func decodePush(t *testing.T, enc codec.Encoding, frame []byte) ([]byte, bool) {
	t.Helper()
	payload := frame[serverHeaderSize(frame):]
	compressed := frame[0]&deflate.RSV1 != 0
	if compressed {
		var err error
		if payload, err = deflate.Inflate(nil, payload, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	var f codec.ServerFrame
	if err := codec.DecodeServerFrame(enc, payload, &f); err != nil {
		t.Fatalf("decode %s push: %v", enc, err)
	}
	return f.Data, compressed
}

// TestCompressOncePerEncodingAt10k: a publication to 10,000 subscribers
// who all negotiated compression is compressed exactly once per encoding
// (the hub's counter), all of an encoding share the same compressed frame,
// and every subscriber decodes every publication correctly.
func TestCompressOncePerEncodingAt10k(t *testing.T) {
	const n, pubs = 10000, 3
	doc := document(t)
	h := New(Config{Compress: func(string) bool { return true }, CompressMinBytes: 256}, &nopBroker{})
	h.Start()
	subs := make([]*deflateSub, n)
	for i := range subs {
		subs[i] = &deflateSub{fakeSub: fakeSub{enc: codec.Encoding(i % 2)}, window: 15}
		must(t, h.Subscribe("feed", subs[i]))
	}
	for i := 1; i <= pubs; i++ {
		for !h.Deliver(&codec.Publication{Channel: []byte("feed"), Offset: uint64(i), Epoch: []byte("e1"), Data: doc}) {
		}
	}
	h.Close()
	if got := h.Stats().Compressed.Load(); got != 2*pubs {
		t.Fatalf("compressed %d times for %d publications in 2 encodings to %d subscribers, want %d", got, pubs, n, 2*pubs)
	}
	for i, s := range subs {
		if len(s.frames) != pubs {
			t.Fatalf("subscriber %d got %d frames, want %d", i, len(s.frames), pubs)
		}
		for k, f := range s.frames {
			if &f[0] != &subs[i%2].frames[k][0] {
				t.Fatalf("subscriber %d frame %d is not the shared one", i, k)
			}
			data, compressed := decodePush(t, s.enc, f)
			if !compressed || !bytes.Equal(data, doc) {
				t.Fatalf("subscriber %d frame %d: compressed %v, data of %d bytes", i, k, compressed, len(data))
			}
		}
	}
}

// TestCompressionRules: plain subscribers get plain frames beside
// compressed ones; a payload under the threshold goes out plain (the same
// bytes to both); a channel whose namespace disallows compression, and a
// hub without Config.Compress, send plain frames to everyone.
func TestCompressionRules(t *testing.T) {
	doc := document(t)
	allow := func(ch string) bool { return ch != "nocompress:x" }
	cases := []struct {
		name     string
		cfg      Config
		channel  string
		data     []byte
		wantZ    bool // the deflate subscriber gets a compressed frame
		compress int64
	}{
		{"compressed beside plain", Config{Compress: allow, CompressMinBytes: 256}, "c", doc, true, 1},
		{"under the threshold", Config{Compress: allow, CompressMinBytes: 256}, "c", doc[:200], false, 0},
		{"namespace off", Config{Compress: allow, CompressMinBytes: 256}, "nocompress:x", doc, false, 0},
		{"compression off", Config{}, "c", doc, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := New(tc.cfg, &nopBroker{})
			h.Start()
			z := &deflateSub{window: 15}
			plain := &deflateSub{}
			must(t, h.Subscribe(tc.channel, z))
			must(t, h.Subscribe(tc.channel, plain))
			for !h.Deliver(&codec.Publication{Channel: []byte(tc.channel), Offset: 1, Data: tc.data}) {
			}
			h.Close()
			if got := h.Stats().Compressed.Load(); got != tc.compress {
				t.Fatalf("compressed %d frames, want %d", got, tc.compress)
			}
			zd, zc := decodePush(t, codec.Msgpack, z.frames[0])
			pd, pc := decodePush(t, codec.Msgpack, plain.frames[0])
			if zc != tc.wantZ || pc || !bytes.Equal(zd, tc.data) || !bytes.Equal(pd, tc.data) {
				t.Fatalf("deflate sub compressed=%v, plain sub compressed=%v", zc, pc)
			}
			if !tc.wantZ && &z.frames[0][0] != &plain.frames[0][0] {
				t.Fatal("an uncompressed frame is not shared")
			}
		})
	}
}

// TestDeliverCompressedAllocations: compressing for 10,000 subscribers
// allocates per publication, not per subscriber.
func TestDeliverCompressedAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop compressors at random")
	}
	doc := document(t)
	var prev float64
	for _, n := range []int{100, 10000} {
		h := New(Config{Compress: func(string) bool { return true }, CompressMinBytes: 256}, &nopBroker{})
		for range n {
			must(t, h.Subscribe("c", &countDeflateSub{}))
		}
		w := worker{shard: h.shard("c")}
		p := &codec.Publication{Channel: []byte("c"), Offset: 1, Data: doc}
		batch := []*codec.Publication{p}
		w.deliverBatch(batch)
		w.flush()
		allocs := testing.AllocsPerRun(20, func() {
			p.Offset++
			w.deliverBatch(batch)
			w.flush()
		})
		t.Logf("%d compressing subscribers: %.1f allocations per publication", n, allocs)
		if allocs > 3 || (prev > 0 && allocs > prev) {
			t.Fatalf("%d subscribers: %.1f allocations per publication (plain frame, compressed frame; pooled compressor)", n, allocs)
		}
		prev = allocs
	}
}

// countDeflateSub counts deliveries and negotiated compression.
type countDeflateSub struct{ countSub }

func (s *countDeflateSub) DeflateWindow() deflate.Window { return 15 }
