package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/wsgate/wsgate/codec"
)

func TestDataBytesMakesA64BytePush(t *testing.T) {
	for _, ch := range []string{"fanout", "fanout.0", "fanout.99", "slow"} {
		n := DataBytes(ch)
		push := codec.AppendMessage(nil, codec.Msgpack, ch, 1, TypicalEpoch, NewData(n))
		if len(push) != PushBytes {
			t.Errorf("%s: data %d → push %d bytes", ch, n, len(push))
		}
	}
	long := string(bytes.Repeat([]byte("c"), 100))
	if DataBytes(long) != stampBytes {
		t.Errorf("long channel: %d", DataBytes(long))
	}
}

func TestStampRoundTrip(t *testing.T) {
	d := NewData(20)
	now := time.Now()
	Stamp(d, 42, now)
	seq, sent, ok := ParseStamp(d)
	if !ok || seq != 42 || !sent.Equal(time.Unix(0, now.UnixNano())) {
		t.Fatalf("%d %v %v", seq, sent, ok)
	}
	if _, _, ok := ParseStamp(d[:15]); ok {
		t.Fatal("short stamp parsed")
	}
}

// TestParsePushFromCodec parses what the server's codec writes.
func TestParsePushFromCodec(t *testing.T) {
	data := NewData(40)
	Stamp(data, 7, time.Unix(1, 2))
	for _, off := range []uint64{0, 200, 1 << 40} {
		p, err := ParsePush(codec.AppendMessage(nil, codec.Msgpack, "fanout", off, TypicalEpoch, data))
		if err != nil || !p.IsMessage() || !bytes.Equal(p.Data, data) {
			t.Fatalf("offset %d: %+v %v", off, p, err)
		}
	}
	p, err := ParsePush(codec.AppendReply(nil, codec.Msgpack, codec.Reply{ID: 300, Cmd: codec.CmdSubscribe, Offset: 5, Epoch: "ep"}))
	if err != nil || !p.IsReply() || p.ID != 300 || p.HasError {
		t.Fatalf("reply: %+v %v", p, err)
	}
	p, err = ParsePush(codec.AppendMessage(nil, codec.Msgpack, "resume.1", 1<<33, "ep", data))
	if err != nil || string(p.Channel) != "resume.1" || p.Offset != 1<<33 || string(p.Epoch) != "ep" || p.HasRecovered {
		t.Fatalf("message position: %+v %v", p, err)
	}
	for _, rec := range []bool{true, false} {
		p, err = ParsePush(codec.AppendReply(nil, codec.Msgpack, codec.Reply{ID: 2, Cmd: codec.CmdSubscribe, Offset: 9, Epoch: "ep",
			Resumed: true, Recovered: rec, Reason: "why"}))
		if err != nil || p.Offset != 9 || string(p.Epoch) != "ep" || !p.HasRecovered || p.Recovered != rec || string(p.Reason) != "why" {
			t.Fatalf("resume reply (recovered %v): %+v %v", rec, p, err)
		}
	}
	p, err = ParsePush(codec.AppendError(nil, codec.Msgpack, 9, codec.CodeBadChannel, "bad channel"))
	if err != nil || !p.IsReply() || p.ID != 9 || !p.HasError ||
		p.ErrorCode != uint64(codec.CodeBadChannel) || string(p.ErrorMessage) != "bad channel" {
		t.Fatalf("error reply: %+v %v", p, err)
	}
}

func TestCommandsDecode(t *testing.T) {
	var c codec.Command
	if err := codec.DecodeCommand(codec.Msgpack, Subscribe(3, "fanout"), &c); err != nil ||
		c.Cmd != codec.CmdSubscribe || c.ID != 3 || string(c.Channel) != "fanout" {
		t.Fatalf("subscribe: %+v %v", c, err)
	}
	d := NewData(20)
	if err := codec.DecodeCommand(codec.Msgpack, Publish(0, "fanout", d), &c); err != nil ||
		c.Cmd != codec.CmdPublish || !bytes.Equal(c.Data, d) {
		t.Fatalf("publish: %+v %v", c, err)
	}
}

// TestSkipEveryType walks a map whose unknown keys hold every MessagePack
// type, then finds "data" after them.
func TestSkipEveryType(t *testing.T) {
	vals := [][]byte{
		{0xc0}, {0xc2}, {0xc3}, {0x05}, {0xe0},
		{0xcc, 1}, {0xcd, 1, 2}, {0xce, 1, 2, 3, 4}, {0xcf, 1, 2, 3, 4, 5, 6, 7, 8},
		{0xd0, 1}, {0xd1, 1, 2}, {0xd2, 1, 2, 3, 4}, {0xd3, 1, 2, 3, 4, 5, 6, 7, 8},
		{0xca, 1, 2, 3, 4}, {0xcb, 1, 2, 3, 4, 5, 6, 7, 8},
		{0xa2, 'h', 'i'}, {0xd9, 1, 'x'}, {0xda, 0, 1, 'x'}, {0xdb, 0, 0, 0, 1, 'x'},
		{0xc4, 1, 9}, {0xc5, 0, 1, 9}, {0xc6, 0, 0, 0, 1, 9},
		{0x92, 1, 0xa1, 'a'}, {0xdc, 0, 1, 0xc0}, {0xdd, 0, 0, 0, 1, 0xc0},
		{0x81, 0xa1, 'k', 0x90}, {0xde, 0, 1, 0xa1, 'k', 0x80}, {0xdf, 0, 0, 0, 1, 0xa1, 'k', 0x80},
		{0xd4, 1, 1}, {0xd8, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		{0xc7, 2, 1, 'a', 'b'}, {0xc8, 0, 1, 1, 'a'}, {0xc9, 0, 0, 0, 1, 1, 'a'},
	}
	b := []byte{0xde, 0, byte(len(vals) + 1)}
	for _, v := range vals {
		b = append(b, 0xa1, 'u')
		b = append(b, v...)
	}
	b = append(b, 0xa4, 'd', 'a', 't', 'a', 0xa3, 'a', 'b', 'c')
	p, err := ParsePush(b)
	if err != nil || string(p.Data) != "abc" {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestParsePushRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"not a map":      {0x91, 0x01},
		"truncated":      {0x81, 0xa4, 't', 'y'},
		"int key":        {0x81, 0x01, 0x01},
		"negative id":    {0x81, 0xa2, 'i', 'd', 0xd0, 0xff},
		"huge array":     {0x81, 0xa1, 'u', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"unknown type":   {0x81, 0xa1, 'u', 0xc1},
		"data not bytes": {0x81, 0xa4, 'd', 'a', 't', 'a', 0x01},
		"deep": append([]byte{0x81, 0xa1, 'u'},
			bytes.Repeat([]byte{0x91}, maxDepth+2)...),
	} {
		if _, err := ParsePush(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParsePush(f *testing.F) {
	f.Add(codec.AppendMessage(nil, codec.Msgpack, "fanout", 3, TypicalEpoch, []byte("hello")))
	f.Add(codec.AppendError(nil, codec.Msgpack, 9, codec.CodeBadChannel, "bad"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParsePush(b) // must not panic or hang
	})
}
