package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// payload marks opaque publication bytes in a test frame: MessagePack bin;
// in JSON the raw text under "data" when it is JSON, else base64 under
// "b64" — what the gateway sends.
type payload []byte

// forMsgpack and forJSON turn a test frame into what each encoder needs.
func forMsgpack(v any) any {
	switch x := v.(type) {
	case payload:
		return []byte(x)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = forMsgpack(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = forMsgpack(e)
		}
		return out
	}
	return v
}

func forJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if p, ok := e.(payload); ok && k == "data" {
				if json.Valid(p) {
					out[k] = json.RawMessage(p)
				} else {
					out["b64"] = base64.StdEncoding.EncodeToString(p)
				}
				continue
			}
			out[k] = forJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = forJSON(e)
		}
		return out
	}
	return v
}

func encodeFrame(t testing.TB, enc Encoding, frame map[string]any) []byte {
	t.Helper()
	if enc == JSON {
		b, err := json.Marshal(forJSON(frame))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return mpMarshal(t, forMsgpack(frame))
}

// summary lists what a decoded frame says, for comparisons.
func summary(f *ServerFrame) map[string]any {
	m := map[string]any{"type": f.Type.String()}
	add := func(k string, cond bool, v any) {
		if cond {
			m[k] = v
		}
	}
	add("type_name", f.Type == FrameUnknown, string(f.TypeName))
	add("id", f.ID != 0, f.ID)
	add("error", f.ErrCode != 0, fmt.Sprintf("%d %s", f.ErrCode, f.ErrMessage))
	add("channel", f.Channel != nil, string(f.Channel))
	add("offset", f.HasOffset, f.Offset)
	add("epoch", f.Epoch != nil, string(f.Epoch))
	add("previous", f.Previous != nil, string(f.Previous))
	add("data", f.HasData, string(f.Data))
	add("recovered", f.HasRecovered, f.Recovered)
	add("reason", f.Reason != nil, string(f.Reason))
	add("replayed", f.Replayed, true)
	add("range", f.Type == FrameGap, fmt.Sprintf("%d-%d", f.From, f.To))
	add("client", f.Client != nil, string(f.Client))
	add("user", f.User != nil, string(f.User))
	add("stats", f.HasStats, fmt.Sprintf("%d/%d", f.NumClients, f.NumUsers))
	if f.HasPublications {
		var pubs []string
		for _, p := range f.Publications {
			pubs = append(pubs, fmt.Sprintf("%d:%s", p.Offset, p.Data))
		}
		m["publications"] = strings.Join(pubs, ",")
	}
	if f.HasClients {
		var cl []string
		for _, c := range f.Clients {
			cl = append(cl, c.Client+"/"+c.User)
		}
		m["clients"] = strings.Join(cl, ",")
	}
	return m
}

func decodeOK(t testing.TB, enc Encoding, frame []byte) *ServerFrame {
	t.Helper()
	var f ServerFrame
	if err := DecodeServerFrame(enc, frame, &f); err != nil {
		t.Fatalf("%v %q: %v", enc, frame, err)
	}
	return &f
}

var serverFrameCases = []struct {
	name  string
	frame map[string]any
	want  map[string]any
}{
	{"message", map[string]any{"type": "message", "channel": "chat:room1", "offset": 42, "epoch": "xq3", "data": payload(`{"text":"hi"}`)},
		map[string]any{"type": "message", "channel": "chat:room1", "offset": uint64(42), "epoch": "xq3", "data": `{"text":"hi"}`}},
	{"binary message", map[string]any{"type": "message", "channel": "c", "offset": 1, "epoch": "e", "data": payload{0, 1, 0xff}},
		map[string]any{"type": "message", "channel": "c", "offset": uint64(1), "epoch": "e", "data": "\x00\x01\xff"}},
	{"message without history", map[string]any{"type": "message", "channel": "c", "offset": 0, "data": payload(`1`)},
		map[string]any{"type": "message", "channel": "c", "offset": uint64(0), "data": "1"}},
	{"message with unknown keys", map[string]any{"x": map[string]any{"a": []any{1, "b"}}, "type": "message", "channel": "c", "data": payload(`"s"`), "ts": 17},
		map[string]any{"type": "message", "channel": "c", "data": `"s"`}},
	{"subscribe reply", map[string]any{"type": "reply", "id": 1, "offset": 41, "epoch": "xq3"},
		map[string]any{"type": "reply", "id": uint32(1), "offset": uint64(41), "epoch": "xq3"}},
	{"resumed subscribe reply", map[string]any{"type": "reply", "id": 2, "offset": 57, "epoch": "xq3", "recovered": false, "reason": "epoch changed"},
		map[string]any{"type": "reply", "id": uint32(2), "offset": uint64(57), "epoch": "xq3", "recovered": false, "reason": "epoch changed"}},
	{"replayed publish reply", map[string]any{"type": "reply", "id": 10, "offset": 12, "epoch": "xq3", "replayed": true},
		map[string]any{"type": "reply", "id": uint32(10), "offset": uint64(12), "epoch": "xq3", "replayed": true}},
	{"error reply", map[string]any{"type": "reply", "id": 3, "error": map[string]any{"code": 113, "message": "outcome unknown"}},
		map[string]any{"type": "reply", "id": uint32(3), "error": "113 outcome unknown"}},
	{"history reply", map[string]any{"type": "reply", "id": 6, "epoch": "xq3", "publications": []any{
		map[string]any{"offset": 31, "data": payload(`{"text":"a"}`)}, map[string]any{"offset": 32, "data": payload{0, 1, 2}}}},
		map[string]any{"type": "reply", "id": uint32(6), "epoch": "xq3", "publications": "31:{\"text\":\"a\"},32:\x00\x01\x02"}},
	{"empty history reply", map[string]any{"type": "reply", "id": 6, "publications": []any{}},
		map[string]any{"type": "reply", "id": uint32(6), "publications": ""}},
	{"presence reply", map[string]any{"type": "reply", "id": 7, "clients": []any{map[string]any{"client": "c-81f2", "user": "42"}, map[string]any{"client": "c-2", "user": ""}}},
		map[string]any{"type": "reply", "id": uint32(7), "clients": "c-81f2/42,c-2/"}},
	{"presence_stats reply", map[string]any{"type": "reply", "id": 8, "clients": 12, "users": 9},
		map[string]any{"type": "reply", "id": uint32(8), "stats": "12/9"}},
	{"join", map[string]any{"type": "join", "channel": "chat:room1", "client": "c-81f2", "user": "42"},
		map[string]any{"type": "join", "channel": "chat:room1", "client": "c-81f2", "user": "42"}},
	{"leave", map[string]any{"type": "leave", "channel": "chat:room1", "client": "c-81f2", "user": ""},
		map[string]any{"type": "leave", "channel": "chat:room1", "client": "c-81f2", "user": ""}},
	{"refresh", map[string]any{"type": "refresh"}, map[string]any{"type": "refresh"}},
	{"unsubscribe", map[string]any{"type": "unsubscribe", "channel": "chat:room1"},
		map[string]any{"type": "unsubscribe", "channel": "chat:room1"}},
	{"gap", map[string]any{"type": "gap", "channel": "c", "from": 7, "to": 9},
		map[string]any{"type": "gap", "channel": "c", "range": "7-9"}},
	{"epoch", map[string]any{"type": "epoch", "channel": "c", "epoch": "k2", "previous": "xq3", "offset": 36},
		map[string]any{"type": "epoch", "channel": "c", "epoch": "k2", "previous": "xq3", "offset": uint64(36)}},
	{"nil is absent", map[string]any{"type": "reply", "id": nil, "epoch": nil, "error": nil, "publications": nil, "recovered": nil},
		map[string]any{"type": "reply"}},
	{"unknown type", map[string]any{"type": "future", "channel": 5, "from": "x"},
		map[string]any{"type": "unknown", "type_name": "future"}},
}

func TestDecodeServerFrame(t *testing.T) {
	for _, enc := range []Encoding{Msgpack, JSON} {
		for _, tc := range serverFrameCases {
			t.Run(enc.String()+"/"+tc.name, func(t *testing.T) {
				frame := encodeFrame(t, enc, tc.frame)
				got := summary(decodeOK(t, enc, frame))
				if tc.want["type"] == "unknown" { // fields of unknown types are not interpreted
					got = map[string]any{"type": got["type"], "type_name": got["type_name"]}
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%s\n got  %v\n want %v", frame, got, tc.want)
				}
			})
		}
	}
}

// The examples of codec/README.md decode to what the text says.
func TestDecodeServerFrameSpecExamples(t *testing.T) {
	hexFrame := func(s string) []byte {
		b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		enc   Encoding
		frame []byte
		want  map[string]any
	}{
		{Msgpack, hexFrame(`84 a4 74 79 70 65 a5 72 65 70 6c 79 a2 69 64 01 a6 6f 66 66 73 65 74 29
			a5 65 70 6f 63 68 a3 78 71 33`),
			map[string]any{"type": "reply", "id": uint32(1), "offset": uint64(41), "epoch": "xq3"}},
		{Msgpack, hexFrame(`83 a4 74 79 70 65 a5 72 65 70 6c 79 a2 69 64 03 a5 65 72 72 6f 72 82
			a4 63 6f 64 65 66 a7 6d 65 73 73 61 67 65 b0 62 61 64 20 63 68 61 6e 6e 65 6c 20 6e 61 6d 65`),
			map[string]any{"type": "reply", "id": uint32(3), "error": "102 bad channel name"}},
		{Msgpack, hexFrame(`85 a4 74 79 70 65 a7 6d 65 73 73 61 67 65 a7 63 68 61 6e 6e 65 6c aa 63
			68 61 74 3a 72 6f 6f 6d 31 a6 6f 66 66 73 65 74 2a a5 65 70 6f 63 68 a3 78 71 33 a4 64 61 74 61 c4 02 68 69`),
			map[string]any{"type": "message", "channel": "chat:room1", "offset": uint64(42), "epoch": "xq3", "data": "hi"}},
		{JSON, []byte(`{"type":"message","channel":"chat:room1","offset":42,"epoch":"xq3","b64":"aGk="}`),
			map[string]any{"type": "message", "channel": "chat:room1", "offset": uint64(42), "epoch": "xq3", "data": "hi"}},
		{JSON, []byte(`{"type":"reply","id":6,"epoch":"xq3","publications":[{"offset":31,"data":{"text":"a"}},{"offset":32,"b64":"AAEC"}]}`),
			map[string]any{"type": "reply", "id": uint32(6), "epoch": "xq3", "publications": "31:{\"text\":\"a\"},32:\x00\x01\x02"}},
		{JSON, []byte(`{"type":"epoch","channel":"chat:room1","epoch":"k2","previous":"xq3","offset":36}`),
			map[string]any{"type": "epoch", "channel": "chat:room1", "epoch": "k2", "previous": "xq3", "offset": uint64(36)}},
	} {
		if got := summary(decodeOK(t, tc.enc, tc.frame)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v % x\n got  %v\n want %v", tc.enc, tc.frame, got, tc.want)
		}
	}
}

// What the gateway's own encoders write decodes to what they were given.
func TestDecodeServerFrameOfOurEncoders(t *testing.T) {
	for _, enc := range []Encoding{Msgpack, JSON} {
		for _, tc := range []struct {
			frame []byte
			want  map[string]any
		}{
			{AppendReply(nil, enc, Reply{ID: 1, Cmd: CmdSubscribe, Offset: 41, Epoch: "xq3", Resumed: true, Recovered: true}),
				map[string]any{"type": "reply", "id": uint32(1), "offset": uint64(41), "epoch": "xq3", "recovered": true, "reason": ""}},
			{AppendReply(nil, enc, Reply{ID: 2, Cmd: CmdHistory, Epoch: "e", Publications: []HistoryPublication{{1, []byte(`[1]`)}, {2, []byte{0xc1}}}}),
				map[string]any{"type": "reply", "id": uint32(2), "epoch": "e", "publications": "1:[1],2:\xc1"}},
			{AppendReply(nil, enc, Reply{ID: 3, Cmd: CmdPresence, Clients: []ClientInfo{{"a", "u\"1"}}}),
				map[string]any{"type": "reply", "id": uint32(3), "clients": "a/u\"1"}},
			{AppendReply(nil, enc, Reply{ID: 4, Cmd: CmdPresenceStats, NumClients: 3, NumUsers: 2}),
				map[string]any{"type": "reply", "id": uint32(4), "stats": "3/2"}},
			{AppendReply(nil, enc, Reply{ID: 5, Cmd: CmdPublish}), map[string]any{"type": "reply", "id": uint32(5)}},
			{AppendError(nil, enc, 9, CodeRateLimited, "slow\ndown"), map[string]any{"type": "reply", "id": uint32(9), "error": "107 slow\ndown"}},
			{AppendJoin(nil, enc, "c", "cl", "u"), map[string]any{"type": "join", "channel": "c", "client": "cl", "user": "u"}},
			{AppendLeave(nil, enc, "c", "cl", ""), map[string]any{"type": "leave", "channel": "c", "client": "cl", "user": ""}},
			{AppendRefresh(nil, enc), map[string]any{"type": "refresh"}},
			{AppendUnsubscribe(nil, enc, "c"), map[string]any{"type": "unsubscribe", "channel": "c"}},
			{AppendMessage(nil, enc, "c", 7, "ep", []byte{0, 1}), map[string]any{"type": "message", "channel": "c", "offset": uint64(7), "epoch": "ep", "data": "\x00\x01"}},
			{AppendMessage(nil, enc, "c", 0, "", []byte(`{"a":1}`)), map[string]any{"type": "message", "channel": "c", "offset": uint64(0), "data": `{"a":1}`}},
			{AppendEpoch(nil, enc, "c", "new", "old", 36), map[string]any{"type": "epoch", "channel": "c", "epoch": "new", "previous": "old", "offset": uint64(36)}},
			{AppendReply(nil, enc, Reply{ID: 6, Cmd: CmdPublish, Offset: 12, Epoch: "e", Replayed: true}),
				map[string]any{"type": "reply", "id": uint32(6), "offset": uint64(12), "epoch": "e", "replayed": true}},
			{AppendGap(nil, enc, "c", 3, 5), map[string]any{"type": "gap", "channel": "c", "range": "3-5"}},
		} {
			if got := summary(decodeOK(t, enc, tc.frame)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%v %q\n got  %v\n want %v", enc, tc.frame, got, tc.want)
			}
		}
	}
}

// Wider integer encodings, repeated keys, escapes and whitespace are all
// read as the rules of codec/README.md §2 say.
func TestDecodeServerFrameEncodingVariants(t *testing.T) {
	// {"type":"message","channel":"c","offset":uint64(5),"offset":int8(6),"data":str "x"}
	mp := cat([]byte{0x85, 0xa4}, bs("type"), []byte{0xa7}, bs("message"), []byte{0xa7}, bs("channel"), []byte{0xa1, 'c'},
		[]byte{0xa6}, bs("offset"), []byte{0xcf, 0, 0, 0, 0, 0, 0, 0, 5}, []byte{0xa6}, bs("offset"), []byte{0xd0, 6},
		[]byte{0xa4}, bs("data"), []byte{0xa1, 'x'})
	if got := summary(decodeOK(t, Msgpack, mp)); got["offset"] != uint64(6) || got["data"] != "x" {
		t.Errorf("msgpack variants: %v", got)
	}
	// Repeated lists: the last one wins, not the two appended.
	lists := []byte(`{"type":"reply","id":6,"publications":[{"offset":1,"data":1}],"publications":[{"offset":2,"data":2}],` +
		`"clients":[{"client":"a","user":"1"}],"clients":[{"client":"b","user":"2"}]}`)
	if got := summary(decodeOK(t, JSON, lists)); got["publications"] != "2:2" || got["clients"] != "b/2" {
		t.Errorf("repeated lists: %v, want only the last of each", got)
	}
	js := []byte(" {\n\"type\" : \"mes\\u0073age\", \"channel\":\"c\",\"epoch\":\"\\u00e9\\/\",\"data\":null,\"reason\":\"\\ud83d\\ude00\"}\t")
	got := summary(decodeOK(t, JSON, js))
	if got["type"] != "message" || got["epoch"] != "é/" || got["data"] != "null" || got["reason"] != "😀" {
		t.Errorf("json variants: %v", got)
	}
}

func TestDecodeServerFrameMalformed(t *testing.T) {
	mpTop := func(kv ...any) []byte { // a MessagePack map written field by field, raw values allowed
		out := mpAppendMapLen(nil, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			out = mpAppendStr(out, kv[i].(string))
			switch v := kv[i+1].(type) {
			case string:
				out = mpAppendStr(out, v)
			case []byte:
				out = append(out, v...)
			case int:
				out = mpAppendUint(out, uint64(v))
			}
		}
		return out
	}
	cases := []struct {
		name  string
		enc   Encoding
		frame []byte
		field string
		is    error
	}{
		{"empty", Msgpack, nil, "", ErrTruncated},
		{"empty json", JSON, nil, "", ErrTruncated},
		{"not a map", Msgpack, []byte{0x91, 0x01}, "", ErrNotMap},
		{"not an object", JSON, []byte(`["reply"]`), "", ErrNotMap},
		{"invalid json", JSON, []byte(`{"type":"reply",}`), "", ErrInvalid},
		{"unquoted key", JSON, []byte(`{type:"reply"}`), "", ErrInvalid},
		{"trailing bytes", Msgpack, append(mpTop("type", "refresh"), 0), "", ErrTrailing},
		{"trailing json", JSON, []byte(`{"type":"refresh"} {}`), "", ErrTrailing},
		{"missing type", Msgpack, mpTop("id", 1), "type", ErrMissing},
		{"type not a string", Msgpack, mpTop("type", 1), "type", ErrType},
		{"message without channel", Msgpack, mpTop("type", "message", "data", []byte{0xc4, 0}), "channel", ErrMissing},
		{"channel not a string", JSON, []byte(`{"type":"message","channel":1}`), "channel", ErrType},
		{"negative offset", JSON, []byte(`{"type":"message","channel":"c","offset":-1}`), "offset", ErrRange},
		{"float offset", JSON, []byte(`{"type":"message","channel":"c","offset":1.0}`), "offset", ErrType},
		{"float offset msgpack", Msgpack, mpTop("type", "message", "channel", "c", "offset", []byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}), "offset", ErrType},
		{"data not bytes", Msgpack, mpTop("type", "message", "channel", "c", "data", []byte{0x01}), "data", ErrType},
		{"data and b64", JSON, []byte(`{"type":"message","channel":"c","data":1,"b64":"AA=="}`), "b64", ErrInvalid},
		{"bad base64", JSON, []byte(`{"type":"message","channel":"c","b64":"A"}`), "b64", ErrInvalid},
		{"id over 32 bits", Msgpack, mpTop("type", "reply", "id", 1<<32), "id", ErrRange},
		{"error without code", JSON, []byte(`{"type":"reply","id":1,"error":{"message":"x"}}`), "error.code", ErrMissing},
		{"error code 0", JSON, []byte(`{"type":"reply","id":1,"error":{"code":0}}`), "error.code", ErrRange},
		{"error not a map", JSON, []byte(`{"type":"reply","id":1,"error":"boom"}`), "error", ErrType},
		{"publications not an array", Msgpack, mpTop("type", "reply", "publications", 3), "publications", ErrType},
		{"publication without offset", JSON, []byte(`{"type":"reply","publications":[{"data":1}]}`), "publications[].offset", ErrMissing},
		{"publication not a map", JSON, []byte(`{"type":"reply","publications":[1]}`), "publications[]", ErrType},
		{"client without id", JSON, []byte(`{"type":"reply","clients":[{"user":"u"}]}`), "clients[].client", ErrMissing},
		{"clients neither array nor count", JSON, []byte(`{"type":"reply","clients":"x"}`), "clients", ErrType},
		{"gap without to", Msgpack, mpTop("type", "gap", "channel", "c", "from", 1), "to", ErrMissing},
		{"gap backwards", Msgpack, mpTop("type", "gap", "channel", "c", "from", 5, "to", 4), "to", ErrRange},
		{"unsubscribe push without channel", JSON, []byte(`{"type":"unsubscribe"}`), "channel", ErrMissing},
		{"epoch push without epoch", JSON, []byte(`{"type":"epoch","channel":"c","previous":"a"}`), "epoch", ErrMissing},
		{"recovered not a bool", JSON, []byte(`{"type":"reply","recovered":1}`), "recovered", ErrType},
		{"too many keys", Msgpack, cat(manyKeys(33)), "", ErrTooManyKeys},
		{"too many keys json", JSON, jsonKeys(33), "", ErrTooManyKeys},
		{"unknown value too deep", Msgpack, mpTop("type", "refresh", "x", nested(10)), "", ErrTooDeep},
		{"unknown value too deep json", JSON, []byte(`{"type":"refresh","x":` + strings.Repeat("[", 10) + strings.Repeat("]", 10) + `}`), "", ErrTooDeep},
		{"huge str", Msgpack, mpTop("type", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}), "", ErrLength},
		{"huge array", Msgpack, mpTop("type", "reply", "publications", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}), "", ErrLength},
		{"truncated publication", Msgpack, mpTop("type", "reply", "publications", []byte{0x91, 0x81}), "", ErrLength},
		{"invalid utf-8", JSON, []byte("{\"type\":\"message\",\"channel\":\"c\xff\"}"), "", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f ServerFrame
			err := DecodeServerFrame(tc.enc, tc.frame, &f)
			var fe *FrameError
			if !errors.As(err, &fe) || !errors.Is(err, tc.is) || fe.Field != tc.field {
				t.Fatalf("% x: err %v, want field %q %v", tc.frame, err, tc.field, tc.is)
			}
		})
	}
}

func jsonKeys(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"refresh"`)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, `,"k%d":1`, i)
	}
	b.WriteString("}")
	return b.Bytes()
}

// Every prefix of a valid frame is an error, never a panic or a success.
func TestDecodeServerFrameTruncated(t *testing.T) {
	for _, enc := range []Encoding{Msgpack, JSON} {
		for _, tc := range serverFrameCases {
			frame := encodeFrame(t, enc, tc.frame)
			for n := 0; n < len(frame); n++ {
				var f ServerFrame
				if err := DecodeServerFrame(enc, frame[:n], &f); err == nil {
					t.Fatalf("%v %s: prefix %q decoded", enc, tc.name, frame[:n])
				}
			}
		}
	}
}

// A message push decodes without allocating into a reused ServerFrame
// (MessagePack, and JSON without escapes or base64).
func TestDecodeServerFrameMessageDoesNotAllocate(t *testing.T) {
	var f ServerFrame
	for _, enc := range []Encoding{Msgpack, JSON} {
		frame := encodeFrame(t, enc, serverFrameCases[0].frame)
		if allocs := testing.AllocsPerRun(100, func() {
			if err := DecodeServerFrame(enc, frame, &f); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("%v: %.0f allocations per message", enc, allocs)
		}
	}
}

// Memory spent on a frame stays a small multiple of its size whatever it
// declares: arrays of the smallest valid elements, and huge declared
// lengths.
func TestDecodeServerFrameAllocationBound(t *testing.T) {
	const n = 6000
	minPub := cat([]byte{0x81, 0xa6}, bs("offset"), []byte{0x00})
	minClient := cat([]byte{0x81, 0xa6}, bs("client"), []byte{0xa0})
	frames := map[string][]byte{
		"publications": cat([]byte{0x82, 0xa4}, bs("type"), []byte{0xa5}, bs("reply"), []byte{0xac}, bs("publications"),
			[]byte{0xdc, n >> 8, n & 0xff}, bytes.Repeat(minPub, n)),
		"clients": cat([]byte{0x82, 0xa4}, bs("type"), []byte{0xa5}, bs("reply"), []byte{0xa7}, bs("clients"),
			[]byte{0xdc, n >> 8, n & 0xff}, bytes.Repeat(minClient, n)),
		"json publications": []byte(`{"type":"reply","publications":[` + strings.TrimSuffix(strings.Repeat(`{"offset":0},`, n), ",") + `]}`),
	}
	for name, h := range hugeHeaders {
		frames["huge "+name] = cat([]byte{0x82, 0xa4}, bs("type"), []byte{0xa5}, bs("reply"), []byte{0xac}, bs("publications"), h)
	}
	for name, frame := range frames {
		enc := Msgpack
		if strings.HasPrefix(name, "json") {
			enc = JSON
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var f ServerFrame
		err := DecodeServerFrame(enc, frame, &f)
		runtime.ReadMemStats(&after)
		if !strings.HasPrefix(name, "huge") && err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 5*uint64(len(frame))+4096 {
			t.Errorf("%s: %d-byte frame allocated %d bytes", name, len(frame), d)
		} else {
			t.Logf("%s: %d-byte frame allocated %d bytes", name, len(frame), d)
		}
	}
}

func FuzzDecodeServerFrame(f *testing.F) {
	for _, enc := range []Encoding{Msgpack, JSON} {
		for _, tc := range serverFrameCases {
			f.Add(enc == JSON, encodeFrame(f, enc, tc.frame))
		}
		f.Add(enc == JSON, AppendReply(nil, enc, Reply{ID: 2, Cmd: CmdHistory, Epoch: "e", Publications: []HistoryPublication{{1, []byte(`[1]`)}, {2, []byte{0xc1}}}}))
		f.Add(enc == JSON, AppendError(nil, enc, 9, CodeRateLimited, "slow\ndown"))
	}
	f.Add(false, cat([]byte{0x82, 0xa4}, bs("type"), []byte{0xa5}, bs("reply"), []byte{0xac}, bs("publications"), hugeHeaders["array32"]))
	f.Add(true, []byte(`{"type":"reply","publications":[{"offset":1,"b64":"AAEC"},{"offset":2,"data":[[[]]]}]}`))
	f.Fuzz(func(t *testing.T, isJSON bool, frame []byte) {
		enc := Msgpack
		if isJSON {
			enc = JSON
		}
		var fr ServerFrame
		err := DecodeServerFrame(enc, frame, &fr)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Err == nil {
				t.Fatalf("error %v (%T), want *FrameError", err, err)
			}
			return
		}
		if isJSON && !json.Valid(frame) {
			t.Fatalf("accepted invalid JSON %q", frame)
		}
		if !isJSON {
			for _, s := range [][]byte{fr.TypeName, fr.Channel, fr.Epoch, fr.Previous, fr.Data, fr.Reason, fr.ErrMessage, fr.Client, fr.User} {
				if !within(s, frame) {
					t.Fatalf("decoded slice %q lies outside the input", s)
				}
			}
		}
		if fr.Type == FrameUnknown {
			return
		}
		// Re-encoded independently, the frame decodes to the same summary.
		again := encodeFrame(t, enc, frameMap(&fr))
		var fr2 ServerFrame
		if err := DecodeServerFrame(enc, again, &fr2); err != nil {
			t.Fatalf("re-encoded %q: %v", again, err)
		}
		if a, b := summary(&fr), summary(&fr2); !reflect.DeepEqual(a, b) {
			t.Fatalf("re-encoded frame differs:\n %v\n %v", a, b)
		}
	})
}

// frameMap is a decoded frame as a test frame, for an independent encoder.
func frameMap(f *ServerFrame) map[string]any {
	m := map[string]any{"type": string(f.TypeName)}
	set := func(k string, cond bool, v any) {
		if cond {
			m[k] = v
		}
	}
	set("id", f.ID != 0, f.ID)
	set("error", f.ErrCode != 0, map[string]any{"code": uint32(f.ErrCode), "message": string(f.ErrMessage)})
	set("channel", f.Channel != nil, string(f.Channel))
	set("offset", f.HasOffset, f.Offset)
	set("epoch", f.Epoch != nil, string(f.Epoch))
	set("previous", f.Previous != nil, string(f.Previous))
	set("data", f.HasData, payload(f.Data))
	set("recovered", f.HasRecovered, f.Recovered)
	set("reason", f.Reason != nil, string(f.Reason))
	set("replayed", f.Replayed, true)
	set("from", f.Type == FrameGap, f.From)
	set("to", f.Type == FrameGap, f.To)
	set("client", f.Client != nil, string(f.Client))
	set("user", f.User != nil, string(f.User))
	set("users", f.HasStats, f.NumUsers)
	if f.HasStats {
		m["clients"] = f.NumClients
	}
	if f.HasPublications {
		pubs := []any{}
		for _, p := range f.Publications {
			pubs = append(pubs, map[string]any{"offset": p.Offset, "data": payload(p.Data)})
		}
		m["publications"] = pubs
	}
	if f.HasClients {
		cl := []any{}
		for _, c := range f.Clients {
			cl = append(cl, map[string]any{"client": c.Client, "user": c.User})
		}
		m["clients"] = cl
	}
	return m
}
