package pubsub

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/codec"
)

func decodeFor(enc codec.Encoding) func([]byte, *serverFrame) error {
	if enc == codec.JSON {
		return decodeJSON
	}
	return decodeMsgpack
}

// TestDecodeServerFrames decodes what the gateway's own encoders write.
func TestDecodeServerFrames(t *testing.T) {
	payload := newPayload(40)
	header{publisher: 3, channel: 1, seq: 7, sentNanos: 42}.put(payload)
	for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
		t.Run(enc.String(), func(t *testing.T) {
			decode := decodeFor(enc)
			var f serverFrame

			if err := decode(codec.AppendMessage(nil, enc, "check:1", 99, "ep", payload), &f); err != nil {
				t.Fatalf("message: %v", err)
			}
			s := &subscriber{json: enc == codec.JSON}
			data, err := s.published(&f)
			if f.kind != kindMessage || string(f.channel) != "check:1" || f.offset != 99 || err != nil || !bytes.Equal(data, payload) {
				t.Fatalf("message decoded as %+v, data %x (%v)", f, data, err)
			}

			sub := codec.AppendReply(nil, enc, codec.Reply{ID: 1, Cmd: codec.CmdSubscribe, Offset: 12, Epoch: "ab"})
			if err := decode(sub, &f); err != nil || f.kind != kindReply || f.id != 1 || f.offset != 12 || f.errCode != 0 {
				t.Fatalf("subscribe reply decoded as %+v (%v)", f, err)
			}

			e := codec.AppendError(nil, enc, 5, codec.CodeRateLimited, `overloaded "now"`)
			if err := decode(e, &f); err != nil || f.kind != kindReply || f.id != 5 || f.errCode != 107 {
				t.Fatalf("error reply decoded as %+v (%v)", f, err)
			}

			// Fields this checker skips: arrays of maps, bools, nested data.
			hist := codec.AppendReply(nil, enc, codec.Reply{ID: 6, Cmd: codec.CmdHistory, Epoch: "e",
				Publications: []codec.HistoryPublication{{Offset: 1, Data: []byte(`{"a":[1,{"b":null}]}`)}, {Offset: 2, Data: payload}}})
			if err := decode(hist, &f); err != nil || f.kind != kindReply || f.id != 6 {
				t.Fatalf("history reply decoded as %+v (%v)", f, err)
			}

			if err := decode(codec.AppendJoin(nil, enc, "check:1", "c1", "u1"), &f); err != nil || f.kind != kindOther {
				t.Fatalf("join decoded as %+v (%v)", f, err)
			}
		})
	}
}

// TestDecodeJSONRawData: a JSON publisher's value arrives raw in "data" and
// is taken byte for byte.
func TestDecodeJSONRawData(t *testing.T) {
	frame := codec.AppendMessage(nil, codec.JSON, "c", 1, "", []byte(`{"x": [1, "a\"b"]}`))
	var f serverFrame
	if err := decodeJSON(frame, &f); err != nil {
		t.Fatal(err)
	}
	s := &subscriber{json: true}
	if data, _ := s.published(&f); string(data) != `{"x": [1, "a\"b"]}` {
		t.Fatalf("data %q", data)
	}
}

// TestDecodeMsgpackAnyEncoding: any key order, unknown keys of every type,
// integers of any width, str for bin — as the protocol asks of clients.
func TestDecodeMsgpackAnyEncoding(t *testing.T) {
	frame, err := msgpack.Marshal(map[string]any{
		"offset":  int64(300), // int64 encoding (d3)
		"channel": "check:0",
		"data":    "str-data",
		"type":    "message",
		"extra":   []any{1.5, true, nil, map[string]any{"n": []byte{1}}, int8(-3)},
		"id":      uint16(9),
	})
	if err != nil {
		t.Fatal(err)
	}
	var f serverFrame
	if err := decodeMsgpack(frame, &f); err != nil {
		t.Fatalf("decode %x: %v", frame, err)
	}
	if f.kind != kindMessage || f.offset != 300 || string(f.data) != "str-data" || f.id != 9 {
		t.Fatalf("decoded as %+v", f)
	}
}

// TestDecodeTruncated: every prefix of a frame fails cleanly, never panics.
func TestDecodeTruncated(t *testing.T) {
	for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
		full := codec.AppendError(nil, enc, 77, codec.CodeInternal, "x")
		decode := decodeFor(enc)
		for n := range len(full) {
			var f serverFrame
			if decode(full[:n], &f) == nil {
				t.Errorf("%s: prefix %q decoded", enc, full[:n])
			}
		}
	}
	for _, bad := range []string{`[]`, `{"type":}`, `{"id":-1}`, `{"a":1 "b":2}`, `{"type":"reply"}x`} {
		var f serverFrame
		if decodeJSON([]byte(bad), &f) == nil {
			t.Errorf("JSON %s decoded", bad)
		}
	}
	var f serverFrame
	if decodeMsgpack([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, &f) == nil {
		t.Error("huge map header decoded")
	}
}
