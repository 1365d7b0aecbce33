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
