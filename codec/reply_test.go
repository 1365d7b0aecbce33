package codec

import (
	"strings"
	"testing"
)

type tree = map[string]any

// decodeBoth decodes our output with the independent decoder for enc.
func decodeOut(t *testing.T, enc Encoding, out []byte) any {
	t.Helper()
	var v any
	var err error
	if enc == JSON {
		v, err = jsonDecodeAll(out)
	} else {
		v, err = mpDecodeAll(out)
	}
	if err != nil {
		t.Fatalf("%v output %q does not decode: %v", enc, out, err)
	}
	return v
}

// payload returns how enc's decoder sees opaque data: bin in msgpack; in
// JSON the decoded value itself, or a b64 field when the bytes are not JSON.
func payloadFields(enc Encoding, data []byte) tree {
	if enc == Msgpack {
		return tree{"data": binVal(data)}
	}
	if v, err := jsonDecodeAll(data); err == nil && validJSON(data) {
		return tree{"data": v}
	}
	return tree{"b64": b64(data)}
}

func merge(a, b tree) tree {
	out := tree{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestAppendReply(t *testing.T) {
	pubs := []HistoryPublication{{Offset: 1, Data: bs(`{"a":1}`)}, {Offset: 2, Data: []byte{0xff, 0}}, {Offset: 1 << 40, Data: nil}}
	cases := []struct {
		name string
		r    Reply
		want func(enc Encoding) tree
	}{
		{"ping", Reply{ID: 1, Cmd: CmdPing}, func(Encoding) tree { return tree{"type": "reply", "id": uint64(1)} }},
		{"publish with position", Reply{ID: 12, Cmd: CmdPublish, Offset: 5, Epoch: "e"}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(12), "offset": uint64(5), "epoch": "e"}
		}},
		{"publish without position", Reply{ID: 13, Cmd: CmdPublish, Epoch: "e"}, func(Encoding) tree { return tree{"type": "reply", "id": uint64(13)} }},
		{"unsubscribe id 0", Reply{Cmd: CmdUnsubscribe}, func(Encoding) tree { return tree{"type": "reply", "id": uint64(0)} }},
		{"subscribe", Reply{ID: 2, Cmd: CmdSubscribe, Offset: 42, Epoch: "ep1"}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(2), "offset": uint64(42), "epoch": "ep1"}
		}},
		{"subscribe resumed", Reply{ID: 3, Cmd: CmdSubscribe, Offset: 1 << 33, Epoch: "e", Resumed: true, Recovered: false, Reason: "too old"}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(3), "offset": uint64(1 << 33), "epoch": "e", "recovered": false, "reason": "too old"}
		}},
		{"history", Reply{ID: 4, Cmd: CmdHistory, Publications: pubs}, func(enc Encoding) tree {
			var list []any
			for _, p := range pubs {
				list = append(list, merge(tree{"offset": p.Offset}, payloadFields(enc, p.Data)))
			}
			return tree{"type": "reply", "id": uint64(4), "publications": list}
		}},
		{"history empty with epoch", Reply{ID: 5, Cmd: CmdHistory, Epoch: "e9"}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(5), "epoch": "e9", "publications": []any{}}
		}},
		{"presence", Reply{ID: 6, Cmd: CmdPresence, Clients: []ClientInfo{{"c1", "u1"}, {"c2", ""}}}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(6), "clients": []any{tree{"client": "c1", "user": "u1"}, tree{"client": "c2", "user": ""}}}
		}},
		{"presence_stats", Reply{ID: 7, Cmd: CmdPresenceStats, NumClients: 70000, NumUsers: 3}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(7), "clients": uint64(70000), "users": uint64(3)}
		}},
		{"error", Reply{ID: 8, Cmd: CmdSubscribe, Code: CodeTooManyChannels, Message: "limit 128", Offset: 9}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(8), "error": tree{"code": uint64(103), "message": "limit 128"}}
		}},
		{"error default message", Reply{ID: 4294967295, Code: CodeUnrecoverable}, func(Encoding) tree {
			return tree{"type": "reply", "id": uint64(4294967295), "error": tree{"code": uint64(112), "message": "unrecoverable position"}}
		}},
		{"strings needing escapes", Reply{ID: 9, Cmd: CmdSubscribe, Epoch: "a\"b\\c\n\x01\u2028é\xff", Offset: 1}, func(enc Encoding) tree {
			ep := "a\"b\\c\n\x01\u2028é\xff"
			if enc == JSON { // JSON text is UTF-8: invalid bytes become U+FFFD
				ep = strings.ToValidUTF8(ep, "\ufffd")
			}
			return tree{"type": "reply", "id": uint64(9), "offset": uint64(1), "epoch": ep}
		}},
	}
	for _, tc := range cases {
		for _, enc := range []Encoding{Msgpack, JSON} {
			t.Run(enc.String()+"/"+tc.name, func(t *testing.T) {
				prefix := []byte("keep")
				out := AppendReply(prefix, enc, tc.r)
				if string(out[:4]) != "keep" {
					t.Fatal("AppendReply overwrote dst")
				}
				assertTree(t, decodeOut(t, enc, out[4:]), tc.want(enc))
			})
		}
	}
}

func TestAppendError(t *testing.T) {
	for _, enc := range []Encoding{Msgpack, JSON} {
		out := AppendError(nil, enc, 5, CodeRateLimited, "")
		assertTree(t, decodeOut(t, enc, out), tree{"type": "reply", "id": uint64(5), "error": tree{"code": uint64(107), "message": "rate limited"}})
	}
	got := string(AppendError(nil, JSON, 1, CodeBadRequest, "channel: wrong type"))
	if want := `{"type":"reply","id":1,"error":{"code":100,"message":"channel: wrong type"}}`; got != want {
		t.Fatalf("JSON error reply\n got  %s\n want %s", got, want)
	}
}

// Replying to a DecodeError: the message comes from the error.
func TestReplyToDecodeError(t *testing.T) {
	var c Command
	err := DecodeCommand(JSON, bs(`{"id":3,"cmd":"history","channel":"c","limit":"x"}`), &c)
	de, ok := err.(*DecodeError)
	if !ok || !de.IDKnown {
		t.Fatalf("err = %v", err)
	}
	out := AppendError(nil, JSON, de.ID, de.Code, de.Message())
	assertTree(t, decodeOut(t, JSON, out), tree{"type": "reply", "id": uint64(3),
		"error": tree{"code": uint64(100), "message": "limit: wrong type: got string, want integer"}})
}

func TestAppendReplyAllocations(t *testing.T) {
	dst := make([]byte, 0, 4096)
	r := Reply{ID: 1, Cmd: CmdHistory, Epoch: "e", Publications: []HistoryPublication{{1, bs("x")}, {2, bs(`"y"`)}}}
	for _, enc := range []Encoding{Msgpack, JSON} {
		if a := testing.AllocsPerRun(100, func() { dst = AppendReply(dst[:0], enc, r) }); a != 0 {
			t.Errorf("%v: %.0f allocations", enc, a)
		}
	}
}
