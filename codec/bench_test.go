package codec

import (
	"bytes"
	"testing"
)

var benchPayload = bytes.Repeat([]byte("x"), 64)
var benchJSONPayload = []byte(`{"user":"u42","text":"hello, world","ts":1732640000123,"tags":["a","b"]}`)

func BenchmarkAppendMessageMsgpack(b *testing.B) {
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendMessage(dst[:0], Msgpack, "chat:room#42", 123456789, "1a2b3c4d", benchPayload)
	}
}

func BenchmarkAppendMessageJSON(b *testing.B) {
	for _, bc := range []struct {
		name string
		data []byte
	}{{"json", benchJSONPayload}, {"b64", benchPayload}} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendMessage(dst[:0], JSON, "chat:room#42", 123456789, "1a2b3c4d", bc.data)
			}
		})
	}
}

func BenchmarkDecodeCommandMsgpack(b *testing.B) {
	frame := mpMarshal(b, map[string]any{"id": 17, "cmd": "publish", "channel": "chat:room#42", "data": benchPayload})
	var c Command
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := DecodeCommand(Msgpack, frame, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommandJSON(b *testing.B) {
	frame := []byte(`{"id":17,"cmd":"publish","channel":"chat:room#42","data":` + string(benchJSONPayload) + `}`)
	var c Command
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := DecodeCommand(JSON, frame, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendReplySubscribe(b *testing.B) {
	dst := make([]byte, 0, 256)
	r := Reply{ID: 17, Cmd: CmdSubscribe, Offset: 123456, Epoch: "e1"}
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendReply(dst[:0], Msgpack, r)
	}
}

func BenchmarkEncodePublication(b *testing.B) {
	p := Publication{Channel: []byte("chat:room#42"), Data: benchPayload, Offset: 123456, Epoch: []byte("e1"), Node: []byte("node-a"), Time: 1732640000123}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = AppendPublication(dst[:0], p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePublication(b *testing.B) {
	env, _ := EncodePublication(Publication{Channel: []byte("chat:room#42"), Data: benchPayload, Offset: 123456, Epoch: []byte("e1"), Node: []byte("node-a"), Time: 1732640000123})
	var p Publication
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodePublication(env, &p); err != nil {
			b.Fatal(err)
		}
	}
}
