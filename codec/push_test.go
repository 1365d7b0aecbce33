package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

var messagePayloads = []struct {
	name   string
	data   []byte
	asJSON bool // embedded raw in JSON, else b64
}{
	{"json object", bs(`{"text":"hi","n":[1,2.5,null,true]}`), true},
	{"json string", bs(`"hello"`), true},
	{"json number", bs(`123`), true},
	{"json with spaces", bs(" [1, 2] \n"), true},
	{"json unicode", bs(`{"é":"😀\u00e9"}`), true},
	{"binary", []byte{0, 1, 2, 0xff, 0xfe}, false},
	{"plain text", bs("hello world"), false},
	{"empty", []byte{}, false},
	{"nil", nil, false},
	{"json with invalid UTF-8", []byte("\"\xff\""), false},
	{"two json values", bs(`1 2`), false},
	{"too deep json", bs(strings.Repeat("[", maxDataNesting+1) + strings.Repeat("]", maxDataNesting+1)), false},
	{"large binary", bytes.Repeat([]byte{0xab}, 70000), false},
}

func TestAppendMessage(t *testing.T) {
	for _, p := range messagePayloads {
		for _, enc := range []Encoding{Msgpack, JSON} {
			t.Run(enc.String()+"/"+p.name, func(t *testing.T) {
				out := AppendMessage([]byte("x"), enc, "chat:room#1", 1<<35+7, "", p.data)[1:]
				got := decodeOut(t, enc, out)
				want := tree{"type": "message", "channel": "chat:room#1", "offset": uint64(1<<35 + 7)}
				want = merge(want, payloadFields(enc, p.data))
				assertTree(t, got, want)
				if enc == JSON {
					raw := bytes.Contains(out, []byte(`"data":`))
					if raw != p.asJSON {
						t.Fatalf("embedded raw = %v, want %v: %s", raw, p.asJSON, out)
					}
					if raw && !bytes.Contains(out, p.data) {
						t.Fatalf("JSON data not embedded verbatim: %s", out)
					}
				}
			})
		}
	}
}

func TestAppendMessageExactBytes(t *testing.T) {
	got := string(AppendMessage(nil, JSON, "c", 5, "", bs(`{"a":1}`)))
	if want := `{"type":"message","channel":"c","offset":5,"data":{"a":1}}`; got != want {
		t.Errorf("JSON\n got  %s\n want %s", got, want)
	}
	got = string(AppendMessage(nil, JSON, "c", 0, "", []byte{0xff}))
	if want := `{"type":"message","channel":"c","offset":0,"b64":"/w=="}`; got != want {
		t.Errorf("JSON b64\n got  %s\n want %s", got, want)
	}
	mp := AppendMessage(nil, Msgpack, "c", 5, "", bs("hi"))
	want := []byte("\x84\xa4type\xa7message\xa7channel\xa1c\xa6offset\x05\xa4data\xc4\x02hi")
	if !bytes.Equal(mp, want) {
		t.Errorf("msgpack\n got  % x\n want % x", mp, want)
	}
}

// The message push is built once per publication: it must not allocate.
func TestAppendMessageZeroAlloc(t *testing.T) {
	dst := make([]byte, 0, 1<<18)
	for _, p := range messagePayloads {
		for _, enc := range []Encoding{Msgpack, JSON} {
			allocs := testing.AllocsPerRun(200, func() {
				dst = AppendMessage(dst[:0], enc, "chat:room#1", 123456789, "", p.data)
			})
			if allocs != 0 {
				t.Errorf("%v/%s: %.1f allocations per message", enc, p.name, allocs)
			}
		}
	}
}

func TestAppendJoinLeave(t *testing.T) {
	for _, enc := range []Encoding{Msgpack, JSON} {
		out := AppendJoin(nil, enc, "room", "client-1", "user-9")
		assertTree(t, decodeOut(t, enc, out), tree{"type": "join", "channel": "room", "client": "client-1", "user": "user-9"})
		out = AppendLeave(nil, enc, "room", "client-1", "")
		assertTree(t, decodeOut(t, enc, out), tree{"type": "leave", "channel": "room", "client": "client-1", "user": ""})
	}
}

// Our JSON strings decode like encoding/json's for any input, including
// invalid UTF-8 (replaced by U+FFFD) and characters needing escapes.
func TestJSONStringEscaping(t *testing.T) {
	inputs := []string{"", "plain", "quote\"back\\slash", "\x00\x01\x1f\x7f", "\n\r\t\b\f", "é😀", "\u2028\u2029",
		"\xff", "a\xffb", "\xe2\x82", "\xed\xa0\x80", strings.Repeat("x", 300) + "\xc3"}
	for _, s := range inputs {
		out := jsonAppendStr(nil, s)
		got, err := jsonDecodeAll(out)
		if err != nil {
			t.Fatalf("%q → %s: %v", s, out, err)
		}
		ref, _ := json.Marshal(s)
		want, _ := jsonDecodeAll(ref)
		if got != want {
			t.Errorf("%q → %s → %q, want %q", s, out, got, want)
		}
	}
}
