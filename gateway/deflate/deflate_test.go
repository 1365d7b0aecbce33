package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// publication is the benchmark's JSON document (bench/README.md,
// "Compression"): a realistic publication of about 1.5 KB.
var publication = mustRead("../../bench/harness/wire/document.json")

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return b
}

// zlibCompress is an independent reference: the standard library's flate
// with a sync flush and the tail removed, as any RFC 7692 peer sends.
func zlibCompress(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// inflateRef decompresses with the standard library alone.
func inflateRef(t testing.TB, z []byte) []byte {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reference inflate: %v", err)
	}
	return out
}

func TestCompressRoundTrip(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("a"), publication, bytes.Repeat([]byte("abc"), 100000)} {
		z := Compress(nil, p)
		if bytes.HasSuffix(z, syncTail[:]) && len(p) > 0 {
			t.Fatalf("tail not stripped")
		}
		if got := inflateRef(t, z); !bytes.Equal(got, p) {
			t.Fatalf("reference inflate of %d bytes: got %d bytes", len(p), len(got))
		}
		got, err := Inflate(nil, z, len(p))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Inflate of %d bytes: %d bytes, %v", len(p), len(got), err)
		}
		got, err = Inflate(nil, zlibCompress(t, p), len(p))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Inflate of a peer's %d bytes: %d bytes, %v", len(p), len(got), err)
		}
	}
}

// TestPublicationRatio reports the compression ratio of the benchmark's
// JSON document (bench/README.md quotes it).
func TestPublicationRatio(t *testing.T) {
	z := Compress(nil, publication)
	ratio := float64(len(publication)) / float64(len(z))
	t.Logf("document.json: %d bytes → %d compressed, ratio %.2f×", len(publication), len(z), ratio)
	if ratio < 1.8 {
		t.Fatalf("ratio %.2f: the document should compress about 2×", ratio)
	}
}

func TestFrame(t *testing.T) {
	f, ok := Frame(wsframe.OpText, publication)
	if !ok || f[0] != 0x80|RSV1|byte(wsframe.OpText) {
		t.Fatalf("frame header %#x, ok %v", f[0], ok)
	}
	z := f[wsframe.HeaderSize(len(f)-4):] // length is 126-encoded: 4-byte header
	if got := inflateRef(t, z); !bytes.Equal(got, publication) {
		t.Fatal("frame payload does not inflate to the publication")
	}
	if _, ok := Frame(wsframe.OpBinary, []byte{0x01, 0x9f, 0x33}); ok {
		t.Fatal("an incompressible payload should go out plain")
	}
}

// bomb returns n zero bytes compressed: about n/1000 bytes of input.
func bomb(t testing.TB, n int) []byte {
	return Compress(nil, make([]byte, n))
}

// TestInflateBombIsBounded: a small message that inflates far past the
// limit fails with ErrTooBig after at most limit+1 bytes of output.
func TestInflateBombIsBounded(t *testing.T) {
	const limit = 64 << 10
	z := bomb(t, 1<<30/8) // 128 MiB of zeros
	if len(z) > 200<<10 {
		t.Fatalf("bomb is %d bytes", len(z))
	}
	out, err := Inflate(nil, z, limit)
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("err %v, want ErrTooBig", err)
	}
	if len(out) > limit+1 || cap(out) > limit+1 {
		t.Fatalf("inflated %d bytes (cap %d), limit %d", len(out), cap(out), limit)
	}
	// At the limit exactly it passes.
	out, err = Inflate(nil, bomb(t, limit), limit)
	if err != nil || len(out) != limit {
		t.Fatalf("message at the limit: %d bytes, %v", len(out), err)
	}
}

// TestDecoderBombAllocations: a 1 KB frame inflating past the limit costs
// about the limit in allocations, not its inflated size.
func TestDecoderBombAllocations(t *testing.T) {
	const limit = 64 << 10
	z := bomb(t, 1<<20)
	if len(z) > 1100 {
		t.Fatalf("bomb is %d bytes, want about 1 KB", len(z))
	}
	frame := maskedFrame(true, wsframe.OpBinary, true, z)
	d := &wsframe.Decoder{MaxMessage: limit, Inflate: Inflate}
	run := func() {
		d.Reset()
		buf := bytes.Clone(frame)
		_, err := d.Decode(buf, discard{})
		var ferr *wsframe.Error
		if !errors.As(err, &ferr) || ferr.Code != wsframe.CloseTooBig {
			t.Fatalf("err %v, want 1009", err)
		}
	}
	run() // warm the pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 20
	for range runs {
		run()
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("%d-byte frame inflating to 1 MiB, limit %d: %d bytes allocated per message", len(frame), limit, perRun)
	// Output doubling up to limit+1 allocates under 2×(limit+1); the
	// frame copy and a pooled inflater that the GC may have emptied add
	// at most some 100 KiB.
	if perRun > 2*(limit+1)+100<<10 {
		t.Fatalf("%d bytes allocated per message: bounded by the limit", perRun)
	}
}

type discard struct{}

func (discard) OnMessage(wsframe.Opcode, []byte) error { return nil }
func (discard) OnPing([]byte)                          {}
func (discard) OnPong([]byte)                          {}
func (discard) OnClose(uint16, []byte)                 {}

func TestInflateInvalid(t *testing.T) {
	for _, z := range [][]byte{{0xff, 0xff, 0xff}, {0x07}, Compress(nil, publication)[:100]} {
		_, err := Inflate(nil, z, 1<<20)
		var ferr *wsframe.Error
		if !errors.As(err, &ferr) || ferr.Code != wsframe.CloseInvalidPayload {
			t.Fatalf("Inflate(%x…): %v, want a 1007 error", z[:min(len(z), 4)], err)
		}
	}
}

// FuzzInflate: any input either inflates within the limit, or fails with
// a 1009 or 1007 error, never with more than limit+1 bytes of output; and
// what Compress produces always inflates back.
func FuzzInflate(f *testing.F) {
	f.Add([]byte("hello hello hello"), []byte{})
	f.Add([]byte{}, []byte{0xff, 0x00})
	f.Add(publication[:200], Compress(nil, make([]byte, 5000)))
	f.Fuzz(func(t *testing.T, plain, raw []byte) {
		const limit = 4 << 10
		got, err := Inflate(nil, Compress(nil, plain), len(plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %d bytes: %v", len(plain), err)
		}
		out, err := Inflate(nil, raw, limit)
		if len(out) > limit+1 {
			t.Fatalf("%d bytes of output past the %d limit", len(out), limit)
		}
		var ferr *wsframe.Error
		if err != nil && (!errors.As(err, &ferr) || ferr.Code != wsframe.CloseTooBig && ferr.Code != wsframe.CloseInvalidPayload) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
