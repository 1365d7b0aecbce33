package codec

import (
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// badCase is one frame with its defined outcome: the error reply code, and
// whether the id is known (reply) or not (close 1007).
type badCase struct {
	name    string
	frame   []byte
	code    ErrorCode
	idKnown bool
	id      uint32
	is      error
}

// mpWith returns {"id":7, "cmd":cmd, "channel":"c", key: value} with value
// given as raw MessagePack bytes.
func mpWith(cmd, key string, raw []byte) []byte {
	out := []byte{0x84, 0xa2, 'i', 'd', 7, 0xa3, 'c', 'm', 'd'}
	out = mpAppendStr(out, cmd)
	out = mpAppendStr(out, "channel")
	out = mpAppendStr(out, "c")
	out = mpAppendStr(out, key)
	return append(out, raw...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// hugeHeaders declare 4 GiB (or 4 G elements) in five bytes.
var hugeHeaders = map[string][]byte{
	"str32":   {0xdb, 0xff, 0xff, 0xff, 0xff},
	"bin32":   {0xc6, 0xff, 0xff, 0xff, 0xff},
	"array32": {0xdd, 0xff, 0xff, 0xff, 0xff},
	"map32":   {0xdf, 0xff, 0xff, 0xff, 0xff},
	"ext32":   {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
	"array16": {0xdc, 0xff, 0xff},
	"str16":   {0xda, 0xff, 0xff},
}

func msgpackBadCases() []badCase {
	const id = 7
	cases := []badCase{
		{name: "empty", frame: nil, is: ErrTruncated},
		{name: "not a map: array", frame: []byte{0x91, 0x01}, is: ErrNotMap},
		{name: "not a map: str", frame: []byte{0xa1, 'x'}, is: ErrNotMap},
		{name: "not a map: int", frame: []byte{0x01}, is: ErrNotMap},
		{name: "not a map: nil", frame: []byte{0xc0}, is: ErrNotMap},
		{name: "never-used byte 0xc1", frame: []byte{0x81, 0xa1, 'x', 0xc1}, is: ErrInvalid},
		{name: "int key", frame: []byte{0x81, 0x01, 0x01}, is: ErrKeyType},
		{name: "bin key", frame: []byte{0x81, 0xc4, 0x01, 'x', 0x01}, is: ErrKeyType},
		{name: "trailing bytes", frame: []byte{0x81, 0xa2, 'i', 'd', 0x01, 0x00}, is: ErrTrailing},
		{name: "33 keys", frame: manyKeys(33), is: ErrTooManyKeys},
		{name: "map32 top level of 4G entries", frame: hugeHeaders["map32"], is: ErrTooManyKeys},
		{name: "map16 entries beyond the input", frame: []byte{0xde, 0x00, 0x05, 0xa1, 'x', 0x01}, is: ErrLength},
		{name: "str32 4GiB as a key", frame: cat([]byte{0x81}, hugeHeaders["str32"]), is: ErrLength},
		{name: "9 levels of nesting", frame: mpWith("ping", "x", nested(9)), is: ErrTooDeep},
		{name: "9 levels of maps", frame: mpWith("ping", "x", nestedMaps(9)), is: ErrTooDeep},

		// The id itself is bad: nothing to reply to.
		{name: "id str", frame: []byte{0x82, 0xa2, 'i', 'd', 0xa1, '1', 0xa3, 'c', 'm', 'd', 0xa4, 'p', 'i', 'n', 'g'}, is: ErrType},
		{name: "id float", frame: []byte{0x81, 0xa2, 'i', 'd', 0xca, 0x3f, 0x80, 0, 0}, is: ErrType},
		{name: "id negative", frame: []byte{0x81, 0xa2, 'i', 'd', 0xff}, is: ErrRange},
		{name: "id over uint32", frame: []byte{0x81, 0xa2, 'i', 'd', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, is: ErrRange},
		{name: "id bool", frame: []byte{0x81, 0xa2, 'i', 'd', 0xc3}, is: ErrType},
		{name: "id ext", frame: []byte{0x81, 0xa2, 'i', 'd', 0xd4, 0x01, 0x01}, is: ErrType},
		{name: "id array", frame: []byte{0x81, 0xa2, 'i', 'd', 0x90}, is: ErrType},

		// Well-formed, id known: an error reply.
		{name: "cmd missing", frame: []byte{0x81, 0xa2, 'i', 'd', id}, code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "cmd int", frame: []byte{0x82, 0xa2, 'i', 'd', id, 0xa3, 'c', 'm', 'd', 0x01}, code: CodeBadRequest, idKnown: true, id: id, is: ErrType},
		{name: "cmd bin", frame: []byte{0x82, 0xa2, 'i', 'd', id, 0xa3, 'c', 'm', 'd', 0xc4, 1, 'x'}, code: CodeBadRequest, idKnown: true, id: id, is: ErrType},
		{name: "cmd unknown", frame: mpWith("frobnicate", "x", []byte{1}), code: CodeUnknownCommand, idKnown: true, id: id, is: ErrUnknownCommand},
		{name: "cmd unknown wins over a bad field", frame: mpWith("frobnicate", "offset", []byte{0xa1, 'x'}), code: CodeUnknownCommand, idKnown: true, id: id},
		{name: "cmd is case-sensitive", frame: mpWith("PING", "x", []byte{1}), code: CodeUnknownCommand, idKnown: true, id: id},
		{name: "id after a bad field", frame: []byte{0x83, 0xa7, 'c', 'h', 'a', 'n', 'n', 'e', 'l', 0x05, 0xa2, 'i', 'd', 9, 0xa3, 'c', 'm', 'd', 0xa9, 's', 'u', 'b', 's', 'c', 'r', 'i', 'b', 'e'},
			code: CodeBadRequest, idKnown: true, id: 9, is: ErrType},
		{name: "channel missing", frame: []byte{0x82, 0xa2, 'i', 'd', id, 0xa3, 'c', 'm', 'd', 0xa7, 'h', 'i', 's', 't', 'o', 'r', 'y'}, code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "channel empty", frame: []byte{0x83, 0xa2, 'i', 'd', id, 0xa3, 'c', 'm', 'd', 0xa9, 's', 'u', 'b', 's', 'c', 'r', 'i', 'b', 'e', 0xa7, 'c', 'h', 'a', 'n', 'n', 'e', 'l', 0xa0},
			code: CodeBadChannel, idKnown: true, id: id, is: ErrBadChannel},
		{name: "publish without data", frame: mpWith("publish", "x", []byte{1}), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "publish with nil data", frame: mpWith("publish", "data", []byte{0xc0}), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "refresh without token", frame: mpWith("refresh", "x", []byte{1}), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "subscribe with offset and no epoch", frame: mpWith("subscribe", "offset", []byte{5}), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "subscribe with epoch and no offset", frame: mpWith("subscribe", "epoch", []byte{0xa1, 'e'}), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
	}
	cases = append(cases, channelBadCases(id)...)

	// Each field with each wrong type.
	wrong := map[string][][]byte{
		"channel": {{0x01}, {0xc4, 1, 'c'}, {0xc3}, {0x90}, {0x80}, {0xcb, 0, 0, 0, 0, 0, 0, 0, 0}},
		"data":    {{0x01}, {0xc3}, {0x91, 0x01}, {0x80}, {0xd4, 0x01, 0x00}, {0xca, 0, 0, 0, 0}},
		"offset":  {{0xa1, '1'}, {0xc4, 1, 1}, {0xca, 0, 0, 0, 0}, {0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, {0xc2}, {0x90}, {0xd5, 1, 0, 0}},
		"epoch":   {{0x01}, {0xc4, 1, 'e'}, {0xc3}, {0x90}},
		"limit":   {{0xa1, '1'}, {0xca, 0, 0, 0, 0}, {0xc3}, {0x90}},
		"reverse": {{0x01}, {0xa4, 't', 'r', 'u', 'e'}, {0x90}},
		"token":   {{0x01}, {0xc4, 1, 't'}, {0xc3}, {0x80}},
	}
	for key, vals := range wrong {
		for _, v := range vals {
			cases = append(cases, badCase{name: key + " as " + mpKindOf(v), frame: mpWith("history", key, v),
				code: CodeBadRequest, idKnown: true, id: id, is: ErrType})
		}
	}
	ranges := map[string][]byte{
		"offset negative":      {0xff},
		"offset negative int8": {0xd0, 0x80},
		"limit negative":       {0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"limit over int32":     {0xce, 0x80, 0, 0, 0},
	}
	for name, v := range ranges {
		key, _, _ := strings.Cut(name, " ")
		cases = append(cases, badCase{name: name, frame: mpWith("history", key, v), code: CodeBadRequest, idKnown: true, id: id, is: ErrRange})
	}

	// Huge declared lengths as an unknown key's value and as known fields.
	for name, h := range hugeHeaders {
		cases = append(cases,
			badCase{name: name + " huge as unknown value", frame: mpWith("ping", "x", h), is: ErrLength},
			badCase{name: name + " huge as data", frame: mpWith("publish", "data", h), is: ErrLength},
			badCase{name: name + " huge nested", frame: mpWith("ping", "x", cat([]byte{0x91}, h)), is: ErrLength})
	}
	return cases
}

func channelBadCases(id uint32) []badCase {
	var out []badCase
	for _, ch := range []string{strings.Repeat("a", DefaultMaxChannelBytes+1), "a b", " a", "a\x00", "é", "a*", "$sys", "a\"b"} {
		f := []byte{0x83, 0xa2, 'i', 'd', byte(id), 0xa3, 'c', 'm', 'd', 0xa9, 's', 'u', 'b', 's', 'c', 'r', 'i', 'b', 'e', 0xa7, 'c', 'h', 'a', 'n', 'n', 'e', 'l'}
		out = append(out, badCase{name: "channel " + strconv.Quote(ch), frame: mpAppendStr(f, ch),
			code: CodeBadChannel, idKnown: true, id: id, is: ErrBadChannel})
	}
	return out
}

func mpKindOf(v []byte) string {
	r := mpReader{b: v}
	h, err := r.head()
	if err != nil {
		return "invalid"
	}
	return h.kind.String() + "(" + strconv.Itoa(int(v[0])) + ")"
}

func manyKeys(n int) []byte {
	out := mpAppendMapLen(nil, n)
	for i := 0; i < n; i++ {
		out = mpAppendStr(out, "k"+strconv.Itoa(i))
		out = append(out, 0x01)
	}
	return out
}

// nested returns n arrays, each inside the previous: [[[...]]].
func nested(n int) []byte {
	out := bytes.Repeat([]byte{0x91}, n-1)
	return append(out, 0x90)
}

func nestedMaps(n int) []byte {
	var out []byte
	for i := 0; i < n-1; i++ {
		out = append(out, 0x81, 0xa1, 'k')
	}
	return append(out, 0x80)
}

func TestDecodeCommandMsgpackMalformed(t *testing.T) {
	for _, tc := range msgpackBadCases() {
		t.Run(tc.name, func(t *testing.T) {
			var c Command
			err := DecodeCommand(Msgpack, tc.frame, &c)
			code := tc.code
			if !tc.idKnown {
				code = CodeBadRequest
			}
			assertDecodeErr(t, err, code, tc.idKnown, tc.id, tc.is)
		})
	}
}

func TestNestingAtTheLimitIsAccepted(t *testing.T) {
	var c Command
	for _, v := range [][]byte{nested(maxNesting), nestedMaps(maxNesting)} {
		if err := DecodeCommand(Msgpack, mpWith("ping", "x", v), &c); err != nil {
			t.Fatalf("%d levels: %v", maxNesting, err)
		}
	}
	js := `{"cmd":"ping","x":` + strings.Repeat(`{"a":`, maxNesting) + "1" + strings.Repeat("}", maxNesting) + "}"
	if err := DecodeCommand(JSON, []byte(js), &c); err != nil {
		t.Fatalf("JSON %d levels: %v", maxNesting, err)
	}
	if err := DecodeCommand(Msgpack, manyKeys(maxMapKeys), &c); !errors.Is(err, ErrMissing) {
		t.Fatalf("%d keys: err = %v, want only the missing cmd", maxMapKeys, err)
	}
}

func jsonBadCases() []badCase {
	const id = 7
	with := func(cmd, key, raw string) []byte {
		return []byte(`{"id":7,"cmd":"` + cmd + `","channel":"c","` + key + `":` + raw + `}`)
	}
	cases := []badCase{
		{name: "empty", frame: nil, is: ErrTruncated},
		{name: "only spaces", frame: bs("  "), is: ErrTruncated},
		{name: "array", frame: bs(`[{"id":1}]`), is: ErrNotMap},
		{name: "number", frame: bs(`1`), is: ErrNotMap},
		{name: "string", frame: bs(`"x"`), is: ErrNotMap},
		{name: "null", frame: bs(`null`), is: ErrNotMap},
		{name: "unclosed", frame: bs(`{"id":1`), is: ErrTruncated},
		{name: "trailing comma", frame: bs(`{"id":1,}`), is: ErrInvalid},
		{name: "missing colon", frame: bs(`{"id" 1}`), is: ErrInvalid},
		{name: "unquoted key", frame: bs(`{id:1}`), is: ErrInvalid},
		{name: "single quotes", frame: bs(`{'id':1}`), is: ErrInvalid},
		{name: "two objects", frame: bs(`{"id":1}{"id":2}`), is: ErrTrailing},
		{name: "trailing garbage", frame: bs(`{"id":1} x`), is: ErrTrailing},
		{name: "leading zero", frame: with("ping", "x", "01"), is: ErrInvalid},
		{name: "bare minus", frame: with("ping", "x", "-"), is: ErrInvalid},
		{name: "dot without digits", frame: with("ping", "x", "1."), is: ErrInvalid},
		{name: "exponent without digits", frame: with("ping", "x", "1e"), is: ErrInvalid},
		{name: "bad literal", frame: with("ping", "x", "tru"), is: ErrInvalid},
		{name: "NaN", frame: with("ping", "x", "NaN"), is: ErrInvalid},
		{name: "control char in string", frame: with("ping", "x", "\"a\x01\""), is: ErrInvalid},
		{name: "bad escape", frame: with("ping", "x", `"\x"`), is: ErrInvalid},
		{name: "bad unicode escape", frame: with("ping", "x", `"\u12g4"`), is: ErrInvalid},
		{name: "invalid UTF-8", frame: with("ping", "x", "\"\xff\""), is: ErrInvalid},
		{name: "array missing comma", frame: with("ping", "x", "[1 2]"), is: ErrInvalid},
		{name: "object wrong close", frame: with("ping", "x", `{"a":1]`), is: ErrInvalid},
		{name: "33 keys", frame: jsonManyKeys(33), is: ErrTooManyKeys},
		{name: "9 levels", frame: with("ping", "x", strings.Repeat("[", 9)+strings.Repeat("]", 9)), is: ErrTooDeep},
		{name: "data too deep", frame: with("publish", "data", strings.Repeat("[", maxDataNesting+1)+strings.Repeat("]", maxDataNesting+1)), is: ErrTooDeep},
		{name: "deep unclosed", frame: bs(`{"x":` + strings.Repeat("[", 100000)), is: ErrTooDeep},

		{name: "id negative", frame: bs(`{"id":-1,"cmd":"ping"}`), is: ErrRange},
		{name: "id minus zero", frame: bs(`{"id":-0,"cmd":"ping"}`), is: ErrRange},
		{name: "id fraction", frame: bs(`{"id":1.5,"cmd":"ping"}`), is: ErrType},
		{name: "id integral fraction", frame: bs(`{"id":1.0,"cmd":"ping"}`), is: ErrType},
		{name: "id exponent", frame: bs(`{"id":1e3,"cmd":"ping"}`), is: ErrType},
		{name: "id over uint32", frame: bs(`{"id":4294967296,"cmd":"ping"}`), is: ErrRange},
		{name: "id huge", frame: bs(`{"id":99999999999999999999999,"cmd":"ping"}`), is: ErrRange},
		{name: "id string", frame: bs(`{"id":"1","cmd":"ping"}`), is: ErrType},
		{name: "id bool", frame: bs(`{"id":true,"cmd":"ping"}`), is: ErrType},
		{name: "id object", frame: bs(`{"id":{},"cmd":"ping"}`), is: ErrType},

		{name: "cmd missing", frame: bs(`{"id":7}`), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "empty object", frame: bs(`{}`), code: CodeBadRequest, idKnown: true, is: ErrMissing},
		{name: "cmd number", frame: bs(`{"id":7,"cmd":1}`), code: CodeBadRequest, idKnown: true, id: id, is: ErrType},
		{name: "cmd unknown", frame: with("frobnicate", "x", "1"), code: CodeUnknownCommand, idKnown: true, id: id, is: ErrUnknownCommand},
		{name: "id after a bad field", frame: bs(`{"channel":5,"cmd":"subscribe","id":9}`), code: CodeBadRequest, idKnown: true, id: 9, is: ErrType},
		{name: "publish without data", frame: with("publish", "x", "1"), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
		{name: "channel too long", frame: bs(`{"id":7,"cmd":"subscribe","channel":"` + strings.Repeat("a", 129) + `"}`), code: CodeBadChannel, idKnown: true, id: id, is: ErrBadChannel},
		{name: "channel with escaped space", frame: bs(`{"id":7,"cmd":"subscribe","channel":"a\u0020b"}`), code: CodeBadChannel, idKnown: true, id: id, is: ErrBadChannel},
		{name: "subscribe offset without epoch", frame: with("subscribe", "offset", "1"), code: CodeBadRequest, idKnown: true, id: id, is: ErrMissing},
	}
	wrong := map[string][]string{
		"channel": {"1", "true", "[]", "{}"},
		"offset":  {`"1"`, "1.5", "1e2", "true", "[]", "{}"},
		"epoch":   {"1", "false", "[]"},
		"limit":   {`"1"`, "0.5", "true"},
		"reverse": {"1", `"true"`, "[]"},
		"token":   {"1", "true", "{}"},
	}
	for key, vals := range wrong {
		for _, v := range vals {
			cases = append(cases, badCase{name: key + " as " + v, frame: with("history", key, v), code: CodeBadRequest, idKnown: true, id: id, is: ErrType})
		}
	}
	cases = append(cases,
		badCase{name: "offset negative", frame: with("history", "offset", "-1"), code: CodeBadRequest, idKnown: true, id: id, is: ErrRange},
		badCase{name: "offset over uint64", frame: with("history", "offset", "18446744073709551616"), code: CodeBadRequest, idKnown: true, id: id, is: ErrRange},
		badCase{name: "limit over int32", frame: with("history", "limit", "2147483648"), code: CodeBadRequest, idKnown: true, id: id, is: ErrRange})
	return cases
}

func jsonManyKeys(n int) []byte {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + strconv.Itoa(i) + `":1`)
	}
	sb.WriteByte('}')
	return []byte(sb.String())
}

func TestDecodeCommandJSONMalformed(t *testing.T) {
	for _, tc := range jsonBadCases() {
		t.Run(tc.name, func(t *testing.T) {
			var c Command
			err := DecodeCommand(JSON, tc.frame, &c)
			code := tc.code
			if !tc.idKnown {
				code = CodeBadRequest
			}
			assertDecodeErr(t, err, code, tc.idKnown, tc.id, tc.is)
		})
	}
}

// Every strict prefix of a valid frame is undecodable (id unknown: close),
// with a truncation error, never a panic or a wrong success.
func TestTruncatedAtEveryByte(t *testing.T) {
	var frames [][]byte
	for _, tc := range goodCases {
		frames = append(frames, mpMarshal(t, tc.mp))
	}
	frames = append(frames, mpRaw(t, func(e *msgpack.Encoder) error {
		_ = e.EncodeMapLen(3)
		_ = e.EncodeString("id")
		_ = e.EncodeUint64(1)
		_ = e.EncodeString("x")
		_ = e.EncodeExtHeader(5, 3)
		_, _ = e.Writer().Write([]byte{1, 2, 3})
		_ = e.EncodeString("cmd")
		return e.EncodeString("ping")
	}))
	for _, f := range frames {
		for i := 0; i < len(f); i++ {
			var c Command
			err := DecodeCommand(Msgpack, f[:i], &c)
			assertTruncated(t, err, f[:i])
		}
	}
	for _, tc := range goodCases {
		f := []byte(tc.js)
		for i := 0; i < len(f); i++ {
			var c Command
			err := DecodeCommand(JSON, f[:i], &c)
			assertTruncated(t, err, f[:i])
		}
	}
	// Multi-byte UTF-8 cut in the middle is truncation too.
	f := []byte(`{"cmd":"ping","x":"é😀"}`)
	for i := 0; i < len(f); i++ {
		var c Command
		assertTruncated(t, DecodeCommand(JSON, f[:i], &c), f[:i])
	}
}

func assertTruncated(t *testing.T, err error, prefix []byte) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) || de.IDKnown || !(errors.Is(err, ErrTruncated) || errors.Is(err, ErrLength)) {
		t.Fatalf("prefix %q: err = %v, want a truncation *DecodeError with the id unknown", prefix, err)
	}
}

// A frame of a few bytes declaring gigabytes must cost only its error.
func TestHugeDeclaredLengthsDoNotAllocate(t *testing.T) {
	var frames [][]byte
	for _, h := range hugeHeaders {
		frames = append(frames, h, cat([]byte{0x81}, h), mpWith("ping", "x", h), mpWith("publish", "data", h),
			mpWith("ping", "x", cat([]byte{0x92, 0x91}, h)))
	}
	var c Command
	for _, f := range frames {
		allocs := testing.AllocsPerRun(100, func() { _ = DecodeCommand(Msgpack, f, &c) })
		if allocs > 1 { // the *DecodeError
			t.Errorf("% x: %.0f allocations per decode", f, allocs)
		}
		var p Publication
		allocs = testing.AllocsPerRun(100, func() { _ = DecodePublication(f, &p) })
		if allocs > 4 { // the wrapped error
			t.Errorf("publication % x: %.0f allocations per decode", f, allocs)
		}
	}
	// Per frame: the bytes allocated by decoding it stay far below what
	// its declared lengths would cost.
	for _, f := range frames {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < 10; i++ {
			_ = DecodeCommand(Msgpack, f, &c)
			var p Publication
			_ = DecodePublication(f, &p)
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 || d/10 > 1024 {
			t.Fatalf("% x: 10 decodes allocated %d bytes", f, d)
		}
	}
}

// A valid command decodes without allocating (msgpack; JSON without
// escapes).
func TestDecodeCommandDoesNotAllocate(t *testing.T) {
	mp := mpMarshal(t, map[string]any{"id": 1, "cmd": "publish", "channel": "chat:room", "data": []byte("hello"), "x": []any{1, 2}})
	js := []byte(`{"id":1,"cmd":"publish","channel":"chat:room","data":{"a":[1,2,"x"]},"x":[1,2]}`)
	var c Command
	for _, tc := range []struct {
		enc   Encoding
		frame []byte
	}{{Msgpack, mp}, {JSON, js}} {
		if allocs := testing.AllocsPerRun(100, func() {
			if err := DecodeCommand(tc.enc, tc.frame, &c); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("%v: %.0f allocations per decode", tc.enc, allocs)
		}
	}
}
