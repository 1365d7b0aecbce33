package loadclient

import (
	"bytes"
	"errors"
	"testing"

	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// TestFrameReaderInflates: with permessage-deflate negotiated, compressed
// messages (whole, or fragmented) arrive inflated, split anywhere; without
// it RSV1 is a protocol error.
func TestFrameReaderInflates(t *testing.T) {
	doc := bytes.Repeat([]byte(`{"id":1,"name":"compressible"},`), 40)
	whole, ok := deflate.Frame(wsframe.OpText, doc)
	if !ok {
		t.Fatal("document did not compress")
	}
	z := deflate.Compress(nil, doc)
	first := append(wsframe.AppendHeader(nil, false, wsframe.OpBinary, 10), z[:10]...)
	first[0] |= deflate.RSV1
	last := append(wsframe.AppendHeader(nil, true, wsframe.OpContinuation, len(z)-10), z[10:]...)
	input := bytes.Join([][]byte{whole, first, last, wsframe.Frame(wsframe.OpText, []byte("plain"))}, nil)
	want := []string{"1:" + string(doc), "2:" + string(doc), "1:plain"}
	for size := 1; size <= len(input); size += 7 {
		r := &frameReader{maxMessage: 1 << 20, deflate: true}
		var rec recorded
		for p := input; len(p) > 0; p = p[min(size, len(p)):] {
			if err := r.feed(p[:min(size, len(p))], &rec); err != nil {
				t.Fatalf("split %d: %v", size, err)
			}
		}
		if len(rec.msgs) != len(want) || rec.msgs[0] != want[0] || rec.msgs[1] != want[1] || rec.msgs[2] != want[2] {
			t.Fatalf("split %d: got %d messages", size, len(rec.msgs))
		}
	}
	r := &frameReader{maxMessage: 1 << 20}
	var ferr *wsframe.Error
	if err := r.feed(whole, &recorded{}); !errors.As(err, &ferr) || ferr.Code != wsframe.CloseProtocolError {
		t.Fatalf("RSV1 without negotiation: %v", err)
	}
}

// TestInflateCache: the same compressed message is inflated once and
// shared; different messages are told apart by their bytes.
func TestInflateCache(t *testing.T) {
	c := newInflateCache()
	a := deflate.Compress(nil, bytes.Repeat([]byte("a message "), 50))
	b := deflate.Compress(nil, bytes.Repeat([]byte("b message "), 50))
	x, err := c.inflate(a, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := c.inflate(bytes.Clone(a), 1<<20)
	z, _ := c.inflate(b, 1<<20)
	if &x[0] != &y[0] || !bytes.HasPrefix(z, []byte("b message")) || !bytes.HasPrefix(x, []byte("a message")) {
		t.Fatal("cache did not share the same message or mixed two up")
	}
	if _, err := c.inflate([]byte{0xff, 0xff}, 1<<20); err == nil {
		t.Fatal("invalid data inflated")
	}
}
