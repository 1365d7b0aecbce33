package pubsub

import (
	"bytes"
	"testing"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/codec"
)

// TestPublished: a subscriber gets the published bytes back from a push
// in either encoding (JSON: base64 when the payload is not JSON, raw when
// it is).
func TestPublished(t *testing.T) {
	payload := newPayload(40)
	header{publisher: 3, channel: 1, seq: 7, sentNanos: 42}.put(payload)
	for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
		s := &subscriber{json: enc == codec.JSON}
		f, err := s.decode(map[bool]byte{true: 1, false: 2}[s.json], codec.AppendMessage(nil, enc, "check:1", 99, "ep", payload))
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if data, err := s.published(&f); err != nil || !bytes.Equal(data, payload) {
			t.Fatalf("%s: data %x (%v)", enc, data, err)
		}
	}
	raw, _ := wire.ParsePushJSON(codec.AppendMessage(nil, codec.JSON, "c", 1, "", []byte(`{"x": [1, "a\"b"]}`)))
	if data, _ := (&subscriber{json: true}).published(&raw); string(data) != `{"x": [1, "a\"b"]}` {
		t.Fatalf("raw JSON data %q", data)
	}
}
