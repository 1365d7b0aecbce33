package codec

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func samePublication(a, b *Publication) bool {
	return bytes.Equal(a.Channel, b.Channel) && bytes.Equal(a.Data, b.Data) && a.Offset == b.Offset &&
		bytes.Equal(a.Epoch, b.Epoch) && bytes.Equal(a.Node, b.Node) && a.Time == b.Time
}

var publications = []Publication{
	{Channel: bs("chat:room1"), Data: bs("hello"), Offset: 42, Epoch: bs("e1"), Node: bs("node-a"), Time: 1732640000123},
	{Channel: bs("c"), Data: nil},
	{Channel: bs("c"), Data: bytes.Repeat([]byte{0xff}, 70000), Offset: math.MaxUint64, Time: -1},
	{Channel: bs(strings.Repeat("x", 300)), Data: []byte{}, Epoch: bs(strings.Repeat("e", 40)), Time: math.MinInt64},
}

func TestPublicationRoundTrip(t *testing.T) {
	for _, p := range publications {
		b, err := EncodePublication(p)
		if err != nil {
			t.Fatal(err)
		}
		var got Publication
		if err := DecodePublication(b, &got); err != nil {
			t.Fatalf("DecodePublication: %v", err)
		}
		if !samePublication(&got, &p) {
			t.Fatalf("got %+v, want %+v", got, p)
		}
		for _, s := range [][]byte{got.Channel, got.Data, got.Epoch, got.Node} {
			if !within(s, b) {
				t.Fatal("decoded slice does not alias the input")
			}
		}
		// An independent decoder reads the same envelope.
		want := tree{"v": uint64(1), "ch": string(p.Channel), "data": binVal(p.Data)}
		if p.Offset != 0 {
			want["off"] = p.Offset
		}
		if len(p.Epoch) > 0 {
			want["ep"] = string(p.Epoch)
		}
		if len(p.Node) > 0 {
			want["node"] = string(p.Node)
		}
		if p.Time != 0 {
			want["ts"] = normInt(p.Time)
		}
		v, err := mpDecodeAll(b)
		if err != nil {
			t.Fatal(err)
		}
		assertTree(t, v, want)
	}
	out, err := AppendPublication([]byte("pre"), publications[0])
	if err != nil || !bytes.HasPrefix(out, []byte("pre")) {
		t.Fatalf("AppendPublication did not append: %q, %v", out, err)
	}
}

// Envelopes written by another implementation (a backend): other integer
// widths, data as str, extra keys in any order.
func TestDecodePublicationForeign(t *testing.T) {
	b := mpMarshal(t, map[string]any{"v": int64(1), "ch": "news", "data": "text as str", "off": uint32(7),
		"ep": "E", "node": "py-backend", "ts": uint64(1732640000123), "extra": []any{1, map[string]any{"x": nil}}, "trace": "t"})
	var p Publication
	if err := DecodePublication(b, &p); err != nil {
		t.Fatal(err)
	}
	want := Publication{Channel: bs("news"), Data: bs("text as str"), Offset: 7, Epoch: bs("E"), Node: bs("py-backend"), Time: 1732640000123}
	if !samePublication(&p, &want) {
		t.Fatalf("got %+v", p)
	}
	// Minimal: only v and ch.
	b = mpMarshal(t, map[string]any{"v": 1, "ch": "c", "data": nil})
	if err := DecodePublication(b, &p); err != nil || p.Data != nil || string(p.Channel) != "c" {
		t.Fatalf("minimal envelope: %+v, %v", p, err)
	}
}

func TestDecodePublicationErrors(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		is   error
	}{
		{"empty", nil, ErrTruncated},
		{"not a map", []byte{0x92, 1, 2}, ErrNotMap},
		{"missing v", mpMarshal(t, map[string]any{"ch": "c"}), ErrMissing},
		{"nil v", mpMarshal(t, map[string]any{"v": nil, "ch": "c"}), ErrMissing},
		{"v 2", mpMarshal(t, map[string]any{"v": 2, "ch": "c"}), ErrVersion},
		{"v 0", mpMarshal(t, map[string]any{"v": 0, "ch": "c"}), ErrVersion},
		{"v str", mpMarshal(t, map[string]any{"v": "1", "ch": "c"}), ErrType},
		{"v negative", mpMarshal(t, map[string]any{"v": -1, "ch": "c"}), ErrRange},
		{"missing ch", mpMarshal(t, map[string]any{"v": 1, "data": []byte("x")}), ErrMissing},
		{"empty ch", mpMarshal(t, map[string]any{"v": 1, "ch": ""}), ErrMissing},
		{"ch int", mpMarshal(t, map[string]any{"v": 1, "ch": 5}), ErrType},
		{"ch bin", mpMarshal(t, map[string]any{"v": 1, "ch": []byte("c")}), ErrType},
		{"data int", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "data": 5}), ErrType},
		{"data array", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "data": []any{1}}), ErrType},
		{"off negative", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "off": -5}), ErrRange},
		{"off float", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "off": 1.5}), ErrType},
		{"ep int", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "ep": 1}), ErrType},
		{"node bool", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "node": true}), ErrType},
		{"ts str", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "ts": "now"}), ErrType},
		{"ts over int64", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "ts": uint64(math.MaxUint64)}), ErrRange},
		{"ts ext", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "ts": msgpack.RawMessage{0xd6, 0xff, 0, 0, 0, 1}}), ErrType},
		{"trailing", append(mpMarshal(t, map[string]any{"v": 1, "ch": "c"}), 0), ErrTrailing},
		{"too many keys", manyKeys(40), ErrTooManyKeys},
		{"int key", []byte{0x81, 0x01, 0x01}, ErrKeyType},
		{"too deep", cat([]byte{0x81, 0xa1, 'x'}, nested(9)), ErrTooDeep},
	}
	for name, h := range hugeHeaders {
		cases = append(cases, struct {
			name string
			b    []byte
			is   error
		}{"huge " + name, cat([]byte{0x82, 0xa1, 'v', 1, 0xa4, 'd', 'a', 't', 'a'}, h), ErrLength})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p Publication
			err := DecodePublication(tc.b, &p)
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

func TestDecodePublicationTruncated(t *testing.T) {
	for _, p := range publications {
		b, _ := EncodePublication(p)
		for i := 0; i < len(b); i++ {
			var got Publication
			err := DecodePublication(b[:i], &got)
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrLength) {
				t.Fatalf("prefix %d/%d: err = %v", i, len(b), err)
			}
		}
	}
}

func TestDecodePublicationDoesNotAllocate(t *testing.T) {
	b, _ := EncodePublication(publications[0])
	var p Publication
	if a := testing.AllocsPerRun(100, func() {
		if err := DecodePublication(b, &p); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%.0f allocations per decode", a)
	}
}
