package codec

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// goodCase is one valid command in both encodings: mp is encoded with
// vmihailenco (map order is random, so key order varies run to run), js
// is JSON text as a browser would send it.
type goodCase struct {
	name string
	mp   map[string]any
	js   string
	want Command
}

var goodCases = []goodCase{
	{
		name: "ping",
		mp:   map[string]any{"id": 1, "cmd": "ping"},
		js:   `{"id":1,"cmd":"ping"}`,
		want: Command{ID: 1, Cmd: CmdPing},
	},
	{
		name: "ping without id is id 0",
		mp:   map[string]any{"cmd": "ping"},
		js:   `{"cmd":"ping"}`,
		want: Command{Cmd: CmdPing},
	},
	{
		name: "subscribe",
		mp:   map[string]any{"id": 2, "cmd": "subscribe", "channel": "chat:room1"},
		js:   `{"cmd":"subscribe","channel":"chat:room1","id":2}`,
		want: Command{ID: 2, Cmd: CmdSubscribe, Channel: bs("chat:room1")},
	},
	{
		name: "subscribe with resume position and token",
		mp:   map[string]any{"id": 3, "cmd": "subscribe", "channel": "user#42", "offset": 17, "epoch": "e1", "token": "tok"},
		js:   `{"id":3,"cmd":"subscribe","channel":"user#42","offset":17,"epoch":"e1","token":"tok"}`,
		want: Command{ID: 3, Cmd: CmdSubscribe, Channel: bs("user#42"), Offset: 17, HasOffset: true, Epoch: bs("e1"), HasEpoch: true, Token: bs("tok")},
	},
	{
		name: "subscribe from offset zero is a position",
		mp:   map[string]any{"id": 4, "cmd": "subscribe", "channel": "c", "offset": 0, "epoch": ""},
		js:   `{"id":4,"cmd":"subscribe","channel":"c","offset":0,"epoch":""}`,
		want: Command{ID: 4, Cmd: CmdSubscribe, Channel: bs("c"), HasOffset: true, Epoch: bs(""), HasEpoch: true},
	},
	{
		name: "nil values are absent",
		mp:   map[string]any{"id": nil, "cmd": "subscribe", "channel": "c", "offset": nil, "epoch": nil, "token": nil, "limit": nil, "reverse": nil},
		js:   `{"id":null,"cmd":"subscribe","channel":"c","offset":null,"epoch":null,"token":null,"limit":null,"reverse":null}`,
		want: Command{Cmd: CmdSubscribe, Channel: bs("c")},
	},
	{
		name: "unsubscribe",
		mp:   map[string]any{"id": 5, "cmd": "unsubscribe", "channel": "dialog#42,43"},
		js:   `{"id":5,"cmd":"unsubscribe","channel":"dialog#42,43"}`,
		want: Command{ID: 5, Cmd: CmdUnsubscribe, Channel: bs("dialog#42,43")},
	},
	{
		name: "publish",
		mp:   map[string]any{"id": 6, "cmd": "publish", "channel": "news", "data": []byte{0, 1, 0xff}},
		js:   `{"id":6,"cmd":"publish","channel":"news","data":{"text":"hi","n":[1,2.5,null]}}`,
		want: Command{ID: 6, Cmd: CmdPublish, Channel: bs("news"), Data: []byte{0, 1, 0xff}},
	},
	{
		name: "publish empty data",
		mp:   map[string]any{"id": 7, "cmd": "publish", "channel": "news", "data": []byte{}},
		js:   `{"id":7,"cmd":"publish","channel":"news","data":""}`,
		want: Command{ID: 7, Cmd: CmdPublish, Channel: bs("news"), Data: []byte{}},
	},
	{
		name: "history",
		mp:   map[string]any{"id": 8, "cmd": "history", "channel": "news", "offset": uint64(5), "limit": 10, "reverse": true},
		js:   `{"id":8,"cmd":"history","channel":"news","offset":5,"limit":10,"reverse":true}`,
		want: Command{ID: 8, Cmd: CmdHistory, Channel: bs("news"), Offset: 5, HasOffset: true, Limit: 10, Reverse: true},
	},
	{
		name: "presence",
		mp:   map[string]any{"id": 9, "cmd": "presence", "channel": "room"},
		js:   `{"id":9,"cmd":"presence","channel":"room"}`,
		want: Command{ID: 9, Cmd: CmdPresence, Channel: bs("room")},
	},
	{
		name: "presence_stats",
		mp:   map[string]any{"id": 10, "cmd": "presence_stats", "channel": "room"},
		js:   `{"id":10,"cmd":"presence_stats","channel":"room"}`,
		want: Command{ID: 10, Cmd: CmdPresenceStats, Channel: bs("room")},
	},
	{
		name: "refresh",
		mp:   map[string]any{"id": 11, "cmd": "refresh", "token": "eyJhbGciOi.x.y"},
		js:   `{"id":11,"cmd":"refresh","token":"eyJhbGciOi.x.y"}`,
		want: Command{ID: 11, Cmd: CmdRefresh, Token: bs("eyJhbGciOi.x.y")},
	},
	{
		name: "extreme integers",
		mp:   map[string]any{"id": uint32(math.MaxUint32), "cmd": "history", "channel": "c", "offset": uint64(math.MaxUint64), "limit": math.MaxInt32},
		js:   `{"id":4294967295,"cmd":"history","channel":"c","offset":18446744073709551615,"limit":2147483647}`,
		want: Command{ID: math.MaxUint32, Cmd: CmdHistory, Channel: bs("c"), Offset: math.MaxUint64, HasOffset: true, Limit: math.MaxInt32},
	},
	{
		name: "unknown keys with nested values are skipped",
		mp: map[string]any{"id": 12, "cmd": "ping",
			"x": map[string]any{"a": []any{1, -2, 2.5, "s", []byte{1}, nil, true, map[string]any{"deep": []any{[]any{[]any{}}}}}},
			"y": 1.5, "z": msgpack.RawMessage{0xd4, 0x01, 0x02}, "w": msgpack.RawMessage{0xc7, 0x03, 0x05, 1, 2, 3},
			"v": []any{}, "u": map[string]any{}},
		js:   `{"id":12,"x":{"a":[1,-2,2.5e-3,"s\u00e9\n",null,true,{"deep":[[[]]]}]},"y":-0.0,"cmd":"ping","v":[],"u":{}}`,
		want: Command{ID: 12, Cmd: CmdPing},
	},
}

func TestDecodeCommandMsgpack(t *testing.T) {
	for _, tc := range goodCases {
		t.Run(tc.name, func(t *testing.T) {
			frame := mpMarshal(t, tc.mp)
			var c Command
			if err := DecodeCommand(Msgpack, frame, &c); err != nil {
				t.Fatalf("DecodeCommand(% x): %v", frame, err)
			}
			if !sameCommand(&c, &tc.want) {
				t.Fatalf("got  %s\nwant %s", cmdString(&c), cmdString(&tc.want))
			}
			for _, s := range [][]byte{c.Channel, c.Data, c.Epoch, c.Token} {
				if !within(s, frame) {
					t.Fatalf("decoded slice %q does not alias the frame", s)
				}
			}
		})
	}
}

func TestDecodeCommandJSON(t *testing.T) {
	for _, tc := range goodCases {
		t.Run(tc.name, func(t *testing.T) {
			var c Command
			if err := DecodeCommand(JSON, []byte(tc.js), &c); err != nil {
				t.Fatalf("DecodeCommand(%s): %v", tc.js, err)
			}
			want := tc.want
			if want.Cmd == CmdPublish { // JSON data is the value's raw text
				i := strings.Index(tc.js, `"data":`) + len(`"data":`)
				want.Data = []byte(tc.js[i : len(tc.js)-1])
			}
			if !sameCommand(&c, &want) {
				t.Fatalf("got  %s\nwant %s", cmdString(&c), cmdString(&want))
			}
		})
	}
}

func TestDecodeCommandMsgpackLayouts(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		want  Command
	}{
		{"signed int encodings for uint fields", mpRaw(t, func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(4)
			_ = e.EncodeString("id")
			_ = e.EncodeInt8(5)
			_ = e.EncodeString("cmd")
			_ = e.EncodeString("history")
			_ = e.EncodeString("channel")
			_ = e.EncodeString("c")
			_ = e.EncodeString("offset")
			return e.EncodeInt64(1 << 40)
		}), Command{ID: 5, Cmd: CmdHistory, Channel: bs("c"), Offset: 1 << 40, HasOffset: true}},
		{"wide uint encodings", mpRaw(t, func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(2)
			_ = e.EncodeString("id")
			_ = e.EncodeUint64(7)
			_ = e.EncodeString("cmd")
			return e.EncodeString("ping")
		}), Command{ID: 7, Cmd: CmdPing}},
		{"duplicate keys: last wins", mpRaw(t, func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(5)
			_ = e.EncodeString("id")
			_ = e.EncodeUint(1)
			_ = e.EncodeString("cmd")
			_ = e.EncodeString("publish")
			_ = e.EncodeString("cmd")
			_ = e.EncodeString("ping")
			_ = e.EncodeString("id")
			_ = e.EncodeUint(2)
			_ = e.EncodeString("data")
			return e.EncodeString("text as str")
		}), Command{ID: 2, Cmd: CmdPing, Data: bs("text as str")}},
		{"map16 header and str8/str16 values", mpRaw(t, func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(20) // map16
			_ = e.EncodeString("id")
			_ = e.EncodeUint(9)
			_ = e.EncodeString("cmd")
			_ = e.EncodeString("refresh")
			_ = e.EncodeString("token")
			_ = e.EncodeString(strings.Repeat("t", 300)) // str16
			for i := 0; i < 17; i++ {
				_ = e.EncodeString(strings.Repeat("k", 40+i)) // str8 unknown keys
				_ = e.EncodeNil()
			}
			return nil
		}), Command{ID: 9, Cmd: CmdRefresh, Token: bs(strings.Repeat("t", 300))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Command
			if err := DecodeCommand(Msgpack, tc.frame, &c); err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if !sameCommand(&c, &tc.want) {
				t.Fatalf("got  %s\nwant %s", cmdString(&c), cmdString(&tc.want))
			}
		})
	}
}

func TestDecodeCommandJSONLayouts(t *testing.T) {
	cases := []struct {
		name, frame string
		want        Command
	}{
		{"whitespace everywhere", " \t\r\n{ \"id\" : 1 ,\n\"cmd\":\t\"ping\" } \n", Command{ID: 1, Cmd: CmdPing}},
		{"duplicate keys: last wins", `{"id":1,"cmd":"publish","id":2,"cmd":"ping"}`, Command{ID: 2, Cmd: CmdPing}},
		{"escaped strings", `{"\u0069d":3,"cmd":"subscribe","channel":"chat\u003aroom\/1","epoch":"\ud83d\ude00","offset":1,"token":"a\"b\\c"}`,
			Command{ID: 3, Cmd: CmdSubscribe, Channel: bs("chat:room/1"), Epoch: bs("😀"), HasEpoch: true, Offset: 1, HasOffset: true, Token: bs(`a"b\c`)}},
		{"data null is a value", `{"id":4,"cmd":"publish","channel":"c","data":null}`, Command{ID: 4, Cmd: CmdPublish, Channel: bs("c"), Data: bs("null")}},
		{"data string keeps quotes", `{"cmd":"publish","channel":"c","data":"x\ny"}`, Command{Cmd: CmdPublish, Channel: bs("c"), Data: bs(`"x\ny"`)}},
		{"data with spaces inside", `{"cmd":"publish","channel":"c","data": [ 1 , {"a" : 2} ] }`, Command{Cmd: CmdPublish, Channel: bs("c"), Data: bs(`[ 1 , {"a" : 2} ]`)}},
		{"unknown key with long escaped name", `{"\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078\u0078x":1,"cmd":"ping"}`, Command{Cmd: CmdPing}},
		{"deep data", `{"cmd":"publish","channel":"c","data":` + strings.Repeat("[", maxDataNesting) + strings.Repeat("]", maxDataNesting) + `}`,
			Command{Cmd: CmdPublish, Channel: bs("c"), Data: bs(strings.Repeat("[", maxDataNesting) + strings.Repeat("]", maxDataNesting))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Command
			if err := DecodeCommand(JSON, []byte(tc.frame), &c); err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if !sameCommand(&c, &tc.want) {
				t.Fatalf("got  %s\nwant %s", cmdString(&c), cmdString(&tc.want))
			}
		})
	}
}

func TestAppendCommandRoundTrip(t *testing.T) {
	for _, tc := range goodCases {
		for _, enc := range []Encoding{Msgpack, JSON} {
			t.Run(enc.String()+"/"+tc.name, func(t *testing.T) {
				want := tc.want
				if enc == JSON && want.Data != nil {
					want.Data = bs(`{"k":[1,"\u00e9"]}`)
				}
				frame, err := AppendCommand(nil, enc, &want)
				if err != nil {
					t.Fatal(err)
				}
				var c Command
				if err := DecodeCommand(enc, frame, &c); err != nil {
					t.Fatalf("DecodeCommand(%q): %v", frame, err)
				}
				if !sameCommand(&c, &want) {
					t.Fatalf("got  %s\nwant %s", cmdString(&c), cmdString(&want))
				}
			})
		}
	}
	_, err := AppendCommand(nil, JSON, &Command{Cmd: CmdPublish, Channel: bs("c"), Data: []byte{0xff}})
	if !errors.Is(err, ErrDataNotJSON) {
		t.Fatalf("binary data in a JSON command: err = %v, want ErrDataNotJSON", err)
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxChannelBytes: 4, MaxDataBytes: 3}
	var c Command
	ok := mpMarshal(t, map[string]any{"id": 1, "cmd": "publish", "channel": "abcd", "data": []byte("123")})
	if err := l.DecodeCommand(Msgpack, ok, &c); err != nil {
		t.Fatalf("within limits: %v", err)
	}
	long := mpMarshal(t, map[string]any{"id": 1, "cmd": "publish", "channel": "abcde", "data": []byte("123")})
	assertDecodeErr(t, l.DecodeCommand(Msgpack, long, &c), CodeBadChannel, true, 1, ErrBadChannel)
	big := mpMarshal(t, map[string]any{"id": 1, "cmd": "publish", "channel": "abcd", "data": []byte("1234")})
	assertDecodeErr(t, l.DecodeCommand(Msgpack, big, &c), CodePayloadTooLarge, true, 1, ErrTooLarge)
}

func assertDecodeErr(t testing.TB, err error, code ErrorCode, idKnown bool, id uint32, is error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v (%T), want *DecodeError", err, err)
	}
	if de.Code != code || de.IDKnown != idKnown || (idKnown && de.ID != id) {
		t.Fatalf("got code %d idKnown %v id %d (%v), want code %d idKnown %v id %d", de.Code, de.IDKnown, de.ID, err, code, idKnown, id)
	}
	if is != nil && !errors.Is(err, is) {
		t.Fatalf("err = %v, want errors.Is %v", err, is)
	}
	if de.Error() == "" || de.Message() == "" {
		t.Fatal("empty error text")
	}
}

func TestEncodingFor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Encoding
		ok   bool
	}{{"", Msgpack, true}, {SubprotocolMsgpack, Msgpack, true}, {SubprotocolJSON, JSON, true}, {"wsgate.v2.json", Msgpack, false}} {
		got, ok := EncodingFor(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("EncodingFor(%q) = %v, %v", tc.in, got, ok)
		}
	}
	if Msgpack.Subprotocol() != SubprotocolMsgpack || JSON.Subprotocol() != SubprotocolJSON {
		t.Error("Subprotocol names")
	}
	for t2 := CmdSubscribe; t2 <= CmdRefresh; t2++ {
		back, ok := ParseCommandType([]byte(t2.String()))
		if !ok || back != t2 {
			t.Errorf("ParseCommandType(%q) = %v, %v", t2.String(), back, ok)
		}
	}
	for c := ErrorCode(100); c <= 112; c++ {
		if strings.HasPrefix(c.String(), "error ") {
			t.Errorf("code %d has no name", c)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		code ErrorCode // 0: accepted
	}{
		{`"order-7"`, 0},
		{`"` + strings.Repeat("k", MaxIdempotencyKeyBytes) + `"`, 0},
		{`"` + strings.Repeat("k", MaxIdempotencyKeyBytes+1) + `"`, CodeBadRequest},
		{`""`, CodeBadRequest},
		{`7`, CodeBadRequest},
		{`null`, 0}, // null is absent
	} {
		frame := `{"id":1,"cmd":"publish","channel":"c","data":1,"idempotency_key":` + tc.key + `}`
		var c Command
		err := DecodeCommand(JSON, []byte(frame), &c)
		var de *DecodeError
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("%s: %v", tc.key, err)
		case tc.code != 0 && (!errors.As(err, &de) || de.Code != tc.code || !de.IDKnown || de.Field != "idempotency_key"):
			t.Errorf("%s: got %v, want code %d on idempotency_key", tc.key, err, tc.code)
		}
	}
}
