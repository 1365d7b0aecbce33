package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// checkDecodeError asserts the invariants of every DecodeCommand failure.
func checkDecodeError(t *testing.T, err error) {
	var de *DecodeError
	if !errors.As(err, &de) || de.Err == nil {
		t.Fatalf("err = %v (%T), want *DecodeError", err, err)
	}
	if de.Code < CodeBadRequest || de.Code > CodeUnrecoverable {
		t.Fatalf("code %d out of range", de.Code)
	}
	if !de.IDKnown && de.Code != CodeBadRequest {
		t.Fatalf("unknown id with code %d", de.Code)
	}
}

// commandMap is c as a generic map, for an independent encoder.
func commandMap(c *Command) map[string]any {
	m := map[string]any{"id": c.ID, "cmd": c.Cmd.String()}
	if c.Channel != nil {
		m["channel"] = string(c.Channel)
	}
	if c.Data != nil {
		m["data"] = c.Data
	}
	if c.HasOffset {
		m["offset"] = c.Offset
	}
	if c.HasEpoch {
		m["epoch"] = string(c.Epoch)
	}
	if c.Limit != 0 {
		m["limit"] = c.Limit
	}
	if c.Reverse {
		m["reverse"] = true
	}
	if c.Token != nil {
		m["token"] = string(c.Token)
	}
	return m
}

func FuzzDecodeCommandMsgpack(f *testing.F) {
	for _, tc := range goodCases {
		f.Add(mpMarshal(f, tc.mp))
	}
	for _, tc := range msgpackBadCases() {
		f.Add(tc.frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var c Command
		err := DecodeCommand(Msgpack, frame, &c)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		for _, s := range [][]byte{c.Channel, c.Data, c.Epoch, c.Token} {
			if !within(s, frame) {
				t.Fatalf("decoded slice %q lies outside the input", s)
			}
		}
		// Re-encoded independently (vmihailenco) and by AppendCommand, the
		// command decodes to the same values.
		again := mpMarshal(t, commandMap(&c))
		var c2 Command
		if err := DecodeCommand(Msgpack, again, &c2); err != nil {
			t.Fatalf("re-encoded %q: %v", again, err)
		}
		if !sameCommand(&c, &c2) {
			t.Fatalf("round trip\n got  %s\n want %s", cmdString(&c2), cmdString(&c))
		}
		ours, err := AppendCommand(nil, Msgpack, &c)
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeCommand(Msgpack, ours, &c2); err != nil || !sameCommand(&c, &c2) {
			t.Fatalf("AppendCommand round trip: %v\n got  %s\n want %s", err, cmdString(&c2), cmdString(&c))
		}
	})
}

func FuzzDecodeCommandJSON(f *testing.F) {
	for _, tc := range goodCases {
		f.Add([]byte(tc.js))
	}
	for _, tc := range jsonBadCases() {
		f.Add(tc.frame)
	}
	f.Add([]byte(`{"\u0069d":3,"cmd":"subscribe","channel":"chat\u003aroom","epoch":"\ud83d\ude00\ud800","offset":1}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		// The scanner never accepts what encoding/json rejects.
		if validJSON(frame) && !json.Valid(frame) {
			t.Fatalf("validJSON accepts %q, json.Valid does not", frame)
		}
		var c Command
		err := DecodeCommand(JSON, frame, &c)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("decoded %q, which is not valid JSON", frame)
		}
		if !within(c.Data, frame) {
			t.Fatal("data lies outside the input")
		}
		for _, s := range [][]byte{c.Channel, c.Epoch, c.Token} {
			if !within(s, frame) && !bytes.Contains(frame, []byte(`\`)) {
				t.Fatalf("unescaped string %q was copied", s)
			}
		}
		again, err := AppendCommand(nil, JSON, &c)
		if err != nil {
			t.Fatalf("AppendCommand: %v", err)
		}
		var c2 Command
		if err := DecodeCommand(JSON, again, &c2); err != nil || !sameCommand(&c, &c2) {
			t.Fatalf("round trip via %s: %v\n got  %s\n want %s", again, err, cmdString(&c2), cmdString(&c))
		}
	})
}

func FuzzDecodePublication(f *testing.F) {
	for _, p := range append(publications[:2:2], publications[4:]...) { // two publications, two events
		b, _ := EncodePublication(p)
		f.Add(b)
	}
	f.Add(mpMarshal(f, map[string]any{"v": 1, "ch": "c", "data": "s", "off": -1}))
	f.Add(mpMarshal(f, map[string]any{"v": 1, "ch": "c", "t": "join", "cl": "x", "u": "", "data": "d", "off": 3}))
	f.Add(mpMarshal(f, map[string]any{"v": 1, "ch": "c", "t": "typing", "cl": "x"}))
	f.Add(mpMarshal(f, map[string]any{"v": 1, "ch": "c", "x": []any{[]any{map[string]any{}}}}))
	for _, h := range hugeHeaders {
		f.Add(cat([]byte{0x82, 0xa1, 'v', 1, 0xa4, 'd', 'a', 't', 'a'}, h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Publication
		if err := DecodePublication(b, &p); err != nil {
			return
		}
		for _, s := range [][]byte{p.Channel, p.Data, p.Epoch, p.Node, p.Client, p.User} {
			if !within(s, b) {
				t.Fatalf("decoded slice %q lies outside the input", s)
			}
		}
		again, err := EncodePublication(p)
		if err != nil {
			t.Fatal(err)
		}
		var p2 Publication
		if err := DecodePublication(again, &p2); err != nil || !samePublication(&p, &p2) {
			t.Fatalf("round trip: %v\n got  %+v\n want %+v", err, p2, p)
		}
		if _, err := mpDecodeAll(again); err != nil {
			t.Fatalf("vmihailenco cannot decode our envelope: %v", err)
		}
	})
}

// Whatever the payload, the JSON message push is valid JSON that gives the
// payload back: verbatim as a JSON value, or exactly through b64.
func FuzzAppendMessageJSON(f *testing.F) {
	for _, p := range messagePayloads[:len(messagePayloads)-1] {
		f.Add("chat:room", p.data)
	}
	f.Add("\xff\"\\", []byte(`{"a":"\ud800"}`))
	f.Add("0", []byte("2"+strings.Repeat("0", 400))) // valid JSON, too big for a float64
	f.Fuzz(func(t *testing.T, channel string, data []byte) {
		out := AppendMessage(nil, JSON, channel, 7, "", data)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil || !json.Valid(out) {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		if raw, ok := m["data"]; ok {
			if !json.Valid(raw) || !json.Valid(data) || !bytes.Contains(out, data) {
				t.Fatalf("data %q not embedded verbatim in %q", data, out)
			}
			return
		}
		var s string
		if err := json.Unmarshal(m["b64"], &s); err != nil {
			t.Fatalf("no data nor b64 in %q", out)
		}
		if got, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("b64 %q does not give back %q", s, data)
		}
		mp := AppendMessage(nil, Msgpack, channel, 7, "", data)
		var back struct {
			Data []byte `msgpack:"data"`
		}
		if err := msgpack.Unmarshal(mp, &back); err != nil || !bytes.Equal(back.Data, data) {
			t.Fatalf("msgpack message does not give back the data: %v", err)
		}
	})
}
