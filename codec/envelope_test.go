package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func samePublication(a, b *Publication) bool {
	return bytes.Equal(a.Channel, b.Channel) && bytes.Equal(a.Data, b.Data) && a.Offset == b.Offset &&
		bytes.Equal(a.Epoch, b.Epoch) && bytes.Equal(a.Node, b.Node) && a.Time == b.Time &&
		a.Kind == b.Kind && bytes.Equal(a.Client, b.Client) && bytes.Equal(a.User, b.User)
}

var publications = []Publication{
	{Channel: bs("chat:room1"), Data: bs("hello"), Offset: 42, Epoch: bs("e1"), Node: bs("node-a"), Time: 1732640000123},
	{Channel: bs("c"), Data: nil},
	{Channel: bs("c"), Data: bytes.Repeat([]byte{0xff}, 70000), Offset: math.MaxUint64, Time: -1},
	{Channel: bs(strings.Repeat("x", 300)), Data: []byte{}, Epoch: bs(strings.Repeat("e", 40)), Time: math.MinInt64},
	// Presence events: no data, no offset.
	{Channel: bs("chat:room1"), Kind: KindJoin, Client: bs("gw-1-7"), User: bs("42"), Node: bs("gw-1"), Time: 1732640000123},
	{Channel: bs("chat:room1"), Kind: KindLeave, Client: bs("gw-1-7")}, // anonymous
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
		for _, s := range [][]byte{got.Channel, got.Data, got.Epoch, got.Node, got.Client, got.User} {
			if !within(s, b) {
				t.Fatal("decoded slice does not alias the input")
			}
		}
		// An independent decoder reads the same envelope.
		want := tree{"v": uint64(1), "ch": string(p.Channel)}
		if p.Kind == KindPublication {
			want["data"] = binVal(p.Data)
		} else {
			want["t"] = p.Kind.String()
			want["cl"] = string(p.Client)
			if len(p.User) > 0 {
				want["u"] = string(p.User)
			}
		}
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
	if err := DecodePublication(b, &p); err != nil || p.Data != nil || string(p.Channel) != "c" || p.Kind != KindPublication {
		t.Fatalf("minimal envelope: %+v, %v", p, err)
	}
	// "t": nil is a publication, like an absent "t".
	b = mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": nil, "data": "x"})
	if err := DecodePublication(b, &p); err != nil || p.Kind != KindPublication || string(p.Data) != "x" {
		t.Fatalf("t nil: %+v, %v", p, err)
	}
	// A backend's leave event, with extra keys and data it need not send.
	b = mpMarshal(t, map[string]any{"u": "7", "t": "leave", "cl": "c-1", "ch": "room", "v": uint8(1), "trace": 1})
	if err := DecodePublication(b, &p); err != nil {
		t.Fatal(err)
	}
	want = Publication{Channel: bs("room"), Kind: KindLeave, Client: bs("c-1"), User: bs("7")}
	if !samePublication(&p, &want) {
		t.Fatalf("event: got %+v", p)
	}
}

// joinEnvelopeHex is the example in codec/README.md §11:
// {"v":1,"ch":"chat:room1","t":"join","cl":"c-81f2","u":"42"}.
const joinEnvelopeHex = "85a17601a26368aa636861743a726f6f6d31a174a46a6f696ea2636ca6632d38316632a175a23432"

// TestEncodeEventBytes pins the bytes of a join event (codec/README.md §11).
func TestEncodeEventBytes(t *testing.T) {
	b, err := EncodePublication(Publication{Channel: bs("chat:room1"), Kind: KindJoin, Client: bs("c-81f2"), User: bs("42")})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != joinEnvelopeHex {
		t.Fatalf("join envelope\n got  %s\n want %s", got, joinEnvelopeHex)
	}
}

func TestEncodeUnknownKind(t *testing.T) {
	if _, err := EncodePublication(Publication{Channel: bs("c"), Kind: 9, Client: bs("x")}); !errors.Is(err, ErrKind) {
		t.Fatalf("err = %v, want ErrKind", err)
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
		{"t unknown", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": "typing", "cl": "x"}), ErrKind},
		{"t empty", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": "", "cl": "x"}), ErrKind},
		{"t int", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": 1, "cl": "x"}), ErrType},
		{"event without cl", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": "join", "u": "42"}), ErrMissing},
		{"event empty cl", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": "leave", "cl": ""}), ErrMissing},
		{"cl bin", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": "join", "cl": []byte("x")}), ErrType},
		{"u int", mpMarshal(t, map[string]any{"v": 1, "ch": "c", "t": "join", "cl": "x", "u": 42}), ErrType},
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
	for _, i := range []int{0, 4} { // a publication, an event
		b, _ := EncodePublication(publications[i])
		var p Publication
		if a := testing.AllocsPerRun(100, func() {
			if err := DecodePublication(b, &p); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Fatalf("envelope %d: %.0f allocations per decode", i, a)
		}
	}
}
