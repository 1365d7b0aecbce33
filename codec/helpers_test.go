package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"testing"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// mpMarshal encodes v with vmihailenco/msgpack: an independent
// implementation of the format, standing in for a client in another
// language.
func mpMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("msgpack.Marshal: %v", err)
	}
	return b
}

// mpRaw builds a frame field by field with the library's encoder, for
// layouts Marshal cannot produce (duplicate keys, forced integer types).
func mpRaw(t testing.TB, fn func(e *msgpack.Encoder) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	if err := fn(e); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return buf.Bytes()
}

// binVal marks a MessagePack bin in normalized trees (strings stay string).
type binVal string

// mpDecodeAll decodes our own (trusted) output with vmihailenco and fails
// on trailing bytes: the test that we produce exactly one valid value.
func mpDecodeAll(b []byte) (any, error) {
	r := bytes.NewReader(b)
	d := msgpack.NewDecoder(r)
	v, err := d.DecodeInterface()
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return normalize(v), nil
}

// jsonDecodeAll decodes one JSON value (numbers kept exact) and fails on
// trailing data or invalid JSON.
func jsonDecodeAll(b []byte) (any, error) {
	if !json.Valid(b) {
		return nil, errors.New("json.Valid: false")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data (%v)", err)
	}
	return normalize(v), nil
}

// normalize maps decoded trees to comparable forms: every integer becomes
// uint64 (non-negative) or int64, bin becomes binVal.
func normalize(v any) any {
	switch x := v.(type) {
	case int8:
		return normInt(int64(x))
	case int16:
		return normInt(int64(x))
	case int32:
		return normInt(int64(x))
	case int64:
		return normInt(x)
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint64:
		return x
	case json.Number:
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		return string(x)
	case []byte:
		return binVal(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func normInt(i int64) any {
	if i >= 0 {
		return uint64(i)
	}
	return i
}

func assertTree(t testing.TB, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n got  %#v\n want %#v", got, want)
	}
}

// within reports whether s lies inside b's memory (or is empty).
func within(s, b []byte) bool {
	if len(s) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	sp := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	bp := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return sp >= bp && sp+uintptr(len(s)) <= bp+uintptr(len(b))
}

func cmdString(c *Command) string {
	return fmt.Sprintf("{ID:%d Cmd:%v Channel:%q Data:%q Offset:%d/%v Epoch:%q/%v Limit:%d Reverse:%v Token:%q}",
		c.ID, c.Cmd, c.Channel, c.Data, c.Offset, c.HasOffset, c.Epoch, c.HasEpoch, c.Limit, c.Reverse, c.Token)
}

// sameCommand compares two commands; nil and empty slices are equal.
func sameCommand(a, b *Command) bool {
	return a.ID == b.ID && a.Cmd == b.Cmd && bytes.Equal(a.Channel, b.Channel) &&
		bytes.Equal(a.Data, b.Data) && a.Offset == b.Offset && a.HasOffset == b.HasOffset &&
		bytes.Equal(a.Epoch, b.Epoch) && a.HasEpoch == b.HasEpoch && a.Limit == b.Limit &&
		a.Reverse == b.Reverse && bytes.Equal(a.Token, b.Token) && (a.Token == nil) == (b.Token == nil)
}

func bs(s string) []byte { return []byte(s) }
