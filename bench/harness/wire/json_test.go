package wire

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/codec"
)

func parserFor(enc codec.Encoding) func([]byte) (Push, error) {
	if enc == codec.JSON {
		return ParsePushJSON
	}
	return ParsePush
}

// TestParsePushEncodings reads what the gateway's own encoders write, in
// both encodings.
func TestParsePushEncodings(t *testing.T) {
	payload := []byte("\x00\x01stamp-and-padding")
	for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
		t.Run(enc.String(), func(t *testing.T) {
			parse := parserFor(enc)
			f, err := parse(codec.AppendMessage(nil, enc, "check:1", 99, "ep", payload))
			data := f.Data
			if enc == codec.JSON {
				data, _ = base64.StdEncoding.DecodeString(string(f.B64))
			}
			if err != nil || !f.IsMessage() || string(f.Channel) != "check:1" || f.Offset != 99 || string(f.Epoch) != "ep" || !bytes.Equal(data, payload) {
				t.Fatalf("message read as %+v (%v)", f, err)
			}
			f, err = parse(codec.AppendReply(nil, enc, codec.Reply{ID: 1, Cmd: codec.CmdSubscribe, Offset: 12, Epoch: "ab"}))
			if err != nil || !f.IsReply() || f.ID != 1 || f.Offset != 12 || f.HasError {
				t.Fatalf("subscribe reply read as %+v (%v)", f, err)
			}
			f, err = parse(codec.AppendError(nil, enc, 5, codec.CodeRateLimited, `overloaded "now"`))
			if err != nil || !f.IsReply() || f.ID != 5 || !f.HasError || f.ErrorCode != 107 {
				t.Fatalf("error reply read as %+v (%v)", f, err)
			}
			// Fields no client here reads: arrays of maps, bools, nested data.
			hist := codec.AppendReply(nil, enc, codec.Reply{ID: 6, Cmd: codec.CmdHistory, Epoch: "e",
				Publications: []codec.HistoryPublication{{Offset: 1, Data: []byte(`{"a":[1,{"b":null}]}`)}, {Offset: 2, Data: payload}}})
			if f, err = parse(hist); err != nil || !f.IsReply() || f.ID != 6 {
				t.Fatalf("history reply read as %+v (%v)", f, err)
			}
			if f, err = parse(codec.AppendJoin(nil, enc, "check:1", "c1", "u1")); err != nil || f.IsReply() || f.IsMessage() {
				t.Fatalf("join read as %+v (%v)", f, err)
			}
			if f, err = parse(codec.AppendGap(nil, enc, "check:1", 3, 7)); err != nil || !f.IsGap() || f.From != 3 || f.To != 7 {
				t.Fatalf("gap read as %+v (%v)", f, err)
			}
		})
	}
}

// TestParsePushJSONRawData: a JSON publisher's value arrives raw in "data"
// and is taken byte for byte.
func TestParsePushJSONRawData(t *testing.T) {
	f, err := ParsePushJSON(codec.AppendMessage(nil, codec.JSON, "c", 1, "", []byte(`{"x": [1, "a\"b"]}`)))
	if err != nil || string(f.Data) != `{"x": [1, "a\"b"]}` {
		t.Fatalf("data %q (%v)", f.Data, err)
	}
}

// TestParsePushAnyEncoding: any key order, unknown keys of every type,
// integers of any width, str for bin, nil for a str — as the protocol asks
// of clients.
func TestParsePushAnyEncoding(t *testing.T) {
	frame, err := msgpack.Marshal(map[string]any{
		"offset":  int64(300), // int64 encoding (d3)
		"channel": "check:0",
		"data":    "str-data",
		"epoch":   nil,
		"type":    "message",
		"extra":   []any{1.5, true, nil, map[string]any{"n": []byte{1}}, int8(-3)},
		"id":      uint16(9),
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParsePush(frame)
	if err != nil || !f.IsMessage() || f.Offset != 300 || string(f.Data) != "str-data" || f.ID != 9 || f.Epoch != nil {
		t.Fatalf("%x read as %+v (%v)", frame, f, err)
	}
}

// TestParsePushTruncated: every prefix of a frame, and a frame with bytes
// after it, fail cleanly, never panic.
func TestParsePushTruncated(t *testing.T) {
	for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
		full := codec.AppendError(nil, enc, 77, codec.CodeInternal, "x")
		parse := parserFor(enc)
		for n := range len(full) {
			if _, err := parse(full[:n]); err == nil {
				t.Errorf("%s: prefix %q read", enc, full[:n])
			}
		}
		if _, err := parse(append(full, '1')); err == nil {
			t.Errorf("%s: trailing byte accepted", enc)
		}
	}
	for _, bad := range []string{`[]`, `{"type":}`, `{"id":-1}`, `{"a":1 "b":2}`, `{"type":"reply"}x`} {
		if _, err := ParsePushJSON([]byte(bad)); err == nil {
			t.Errorf("JSON %s read", bad)
		}
	}
	if _, err := ParsePush([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}); err == nil {
		t.Error("huge map header read")
	}
}
