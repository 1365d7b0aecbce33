package centrifugo

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/drive"
)

// recorded returns testdata/recorded.json: every WebSocket message one
// client received from Centrifugo v6.9.1 (configured as Config.File
// does, ping interval 4 s). The client sent Hello("fanout") plus a
// subscribe outside the namespace in one message, then Publisher
// published one message and a burst of 20 on "fanout"; the server
// batched the burst's pushes into two messages (5 and 15 frames); the
// last message is a ping.
func recorded(t *testing.T) [][]byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/recorded.json")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	if err := json.Unmarshal(raw, &msgs); err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = []byte(m)
	}
	return out
}

func TestRecordedMessages(t *testing.T) {
	msgs := recorded(t)
	var frames []drive.Frame
	perMessage := make([]int, len(msgs))
	for i, m := range msgs {
		if err := (Dialect{}).Read(m, func(f drive.Frame) {
			frames = append(frames, f)
			perMessage[i]++
		}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if want := []int{1, 1, 1, 1, 5, 15, 1}; !equalInts(perMessage, want) {
		t.Fatalf("frames per message %v, want %v (the burst arrives batched)", perMessage, want)
	}
	// connect, subscribe: replies; the subscribe outside the namespace:
	// refused.
	for i, failed := range []bool{false, false, true} {
		if f := frames[i]; f.Kind != drive.KindReply || f.Failed != failed {
			t.Fatalf("frame %d: %+v, want a reply (failed %v)", i, f, failed)
		}
	}
	// 21 publications, stamped 0…20 in order, sent within the recording.
	pubs := frames[3:24]
	for i, f := range pubs {
		if f.Kind != drive.KindMessage || !f.Stamped || f.Seq != uint64(i) {
			t.Fatalf("publication %d: %+v", i, f)
		}
		if f.Bytes != len(`{"push":{"channel":"bench:fanout","pub":{"data":"AAAAAAAAAAAY7hohyGFZaA"}}}`) {
			t.Fatalf("publication %d: %d bytes", i, f.Bytes)
		}
		if i > 0 && f.Sent.Before(pubs[i-1].Sent) {
			t.Fatalf("publication %d stamped before its predecessor", i)
		}
	}
	if first, last := pubs[0].Sent, pubs[len(pubs)-1].Sent; first.Year() < 2024 || last.Sub(first) > time.Second {
		t.Fatalf("stamps %v … %v", first, last)
	}
	if f := frames[24]; f.Kind != drive.KindPing || string(f.Pong) != "{}" {
		t.Fatalf("last frame %+v, want a ping", f)
	}
}

func TestRecordedFrameFields(t *testing.T) {
	msgs := recorded(t)
	connect, err := ParseFrame(msgs[0])
	if err != nil || connect.ID != 1 || string(connect.Result) != "connect" || connect.HasError || !connect.IsReply() {
		t.Fatalf("connect reply %+v %v", connect, err)
	}
	refused, err := ParseFrame(msgs[2])
	if err != nil || refused.ID != 3 || !refused.HasError || refused.ErrorCode != 103 || refused.Result != nil {
		t.Fatalf("error reply %+v %v", refused, err)
	}
	pub, err := ParseFrame(msgs[3])
	if err != nil || pub.ID != 0 || !pub.IsPublication() || string(pub.Channel) != "bench:fanout" || pub.IsReply() {
		t.Fatalf("push %+v %v", pub, err)
	}
	if string(pub.Data) != `"AAAAAAAAAAAY7hohyGFZaA"` {
		t.Fatalf("data %s", pub.Data)
	}
	ping, err := ParseFrame(msgs[6])
	if err != nil || !ping.IsPing() {
		t.Fatalf("ping %+v %v", ping, err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSplit(t *testing.T) {
	var got []string
	Split([]byte("{}\n\n {\"id\":1}\n\r\n"), func(f []byte) { got = append(got, string(f)) })
	if strings.Join(got, "|") != `{}| {"id":1}` {
		t.Fatalf("frames %q", got)
	}
	got = nil
	Split(nil, func(f []byte) { got = append(got, string(f)) })
	if len(got) != 0 {
		t.Fatalf("empty message gave %q", got)
	}
}

func TestParseFrame(t *testing.T) {
	good := []struct {
		in               string
		id               uint32
		result, push, ch string
		data             string
		code             uint32
		ping             bool
	}{
		{in: `{}`, ping: true},
		{in: " { } \r", ping: true},
		{in: `{"id":4294967295,"subscribe":{"recoverable":true,"epoch":"x","publications":[{"data":{"a":[1,2.5e-3,-0.5,null,false]}}]}}`, id: 4294967295, result: "subscribe"},
		{in: `{"id":7,"error":{"message":"a \"quoted\" \u00e9 \\ reason","code":109,"temporary":true}}`, id: 7, code: 109},
		{in: `{"push":{"channel":"bench:x","pub":{"offset":3,"data":{"k":"v"},"info":{"user":""}}}}`, push: "pub", ch: "bench:x", data: `{"k":"v"}`},
		{in: `{"push":{"pub":{"data":"AAAA"},"channel":"c"}}`, push: "pub", ch: "c", data: `"AAAA"`},
		{in: `{"push":{"channel":"c","join":{"info":{"client":"x"}}}}`, push: "join", ch: "c"},
		{in: `{"push":{"channel":"c","unsubscribe":{"code":2500}}}`, push: "unsubscribe", ch: "c"},
		{in: `{"future":[[],{},""],"push":{"channel":"c","pub":{"data":0}}}`, result: "future", push: "pub", ch: "c", data: "0"},
	}
	for _, c := range good {
		f, err := ParseFrame([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if f.ID != c.id || string(f.Result) != c.result || string(f.Push) != c.push || string(f.Channel) != c.ch ||
			string(f.Data) != c.data || f.ErrorCode != c.code || f.IsPing() != c.ping || f.HasError != (c.code != 0) {
			t.Errorf("%s: got %+v", c.in, f)
		}
		if !json.Valid([]byte(c.in)) {
			t.Errorf("%s: test case is not JSON", c.in)
		}
	}
	bad := []string{
		``, ` `, `[]`, `"x"`, `{`, `{"id"`, `{"id":}`, `{"id":-1}`, `{"id":1.5}`, `{"id":01}`, `{"id":4294967296}`,
		`{"id":1,}`, `{"id":1 "x":2}`, `{}x`, `{}{}`, `{"push":[]}`, `{"push":{"channel":1}}`, `{"error":"x"}`,
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}", `{"a":tru}`, `{"a":nul}`, `{"a":-}`,
		`{"a":1.}`, `{"a":1e}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":"unterminated}`, `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		`{1:2}`, `{"a" 1}`,
	}
	for _, in := range bad {
		if f, err := ParseFrame([]byte(in)); err == nil {
			t.Errorf("%q parsed: %+v", in, f)
		}
	}
}

func TestStamp(t *testing.T) {
	sent := time.Unix(1767000000, 987654321)
	for _, size := range []int{0, MinDataBytes, 64, 16384} {
		d := NewData(size)
		if len(d) != max(size, MinDataBytes) || !json.Valid(d) {
			t.Fatalf("NewData(%d): %d bytes, valid JSON %v", size, len(d), json.Valid(d))
		}
		Stamp(d, 1<<40+5, sent)
		if !json.Valid(d) {
			t.Fatalf("stamped data is not JSON: %s", d)
		}
		seq, at, ok := ParseStamp(d)
		if !ok || seq != 1<<40+5 || !at.Equal(sent) {
			t.Fatalf("size %d: %d %v %v", size, seq, at, ok)
		}
	}
	for _, d := range []string{``, `"short"`, `{"a":"AAAAAAAAAAAY7hohyGFZaA"}`, `"AAAAAAAAAAAY7hohyGFZa!"`, `"AAAAAAAAAAAY7hohyGFZa="`} {
		if _, _, ok := ParseStamp([]byte(d)); ok {
			t.Errorf("%q read as a stamp", d)
		}
	}
}

func TestCommands(t *testing.T) {
	for _, c := range [][]byte{ConnectCommand(1), SubscribeCommand(2, `we"ird`), Dialect{}.Hello("slow")} {
		Split(c, func(line []byte) {
			if !json.Valid(line) {
				t.Errorf("not JSON: %s", line)
			}
		})
	}
	var sub struct {
		ID        uint32 `json:"id"`
		Subscribe struct {
			Channel string `json:"channel"`
		} `json:"subscribe"`
	}
	if err := json.Unmarshal(SubscribeCommand(9, `we"ird`), &sub); err != nil || sub.ID != 9 || sub.Subscribe.Channel != `bench:we"ird` {
		t.Fatalf("subscribe %+v %v", sub, err)
	}
	hello := Dialect{}.Hello("slow")
	if lines := bytes.Split(hello, []byte("\n")); len(lines) != 2 || !bytes.Contains(lines[0], []byte(`"connect"`)) || !bytes.Contains(lines[1], []byte(`"bench:slow"`)) {
		t.Fatalf("hello %s: connect, then subscribe", hello)
	}
}

// TestReadReportsMalformed: the good frames of a message still count; the
// bad one is an error.
func TestReadReportsMalformed(t *testing.T) {
	n := 0
	err := Dialect{}.Read([]byte("{}\n{\"id\":\n{\"id\":2,\"subscribe\":{}}"), func(drive.Frame) { n++ })
	if err == nil || n != 2 {
		t.Fatalf("err %v, %d frames", err, n)
	}
}

// FuzzParseFrame: ParseFrame never panics, accepts only JSON, and agrees
// with encoding/json on the fields it reads.
func FuzzParseFrame(f *testing.F) {
	for _, m := range [][]byte{
		[]byte(`{}`), []byte(`{"id":1,"connect":{"client":"x","ping":25,"pong":true}}`),
		[]byte(`{"id":3,"error":{"code":103,"message":"permission denied"}}`),
		[]byte(`{"push":{"channel":"bench:fanout","pub":{"data":"AAAAAAAAAAAY7hohyGFZaA"}}}`),
		[]byte(`{"a":[1,-2.5e+3,"\u00e9\n",true,false,null,{}]}`),
	} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		// Duplicate keys and escaped keys are where a scanner and a decoder
		// may disagree; the protocol has neither.
		if bytes.Contains(b, []byte(`\`)) || hasDuplicateKeys(b) {
			return
		}
		// Maps, not structs: encoding/json matches struct fields without
		// regard to case, the protocol does not.
		field := func(raw json.RawMessage, key string) json.RawMessage {
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) != nil {
				return nil
			}
			return m[key]
		}
		if id := field(b, "id"); id != nil {
			var want uint32
			if json.Unmarshal(id, &want) != nil || want != fr.ID {
				t.Fatalf("id %d, json says %s", fr.ID, id)
			}
		}
		if e := field(b, "error"); e != nil {
			var code uint32
			if c := field(e, "code"); !fr.HasError || c != nil && (json.Unmarshal(c, &code) != nil || code != fr.ErrorCode) {
				t.Fatalf("error %+v, json says %s", fr, e)
			}
		}
		if data := field(field(field(b, "push"), "pub"), "data"); data != nil && !bytes.Equal(fr.Data, bytes.TrimSpace(data)) {
			t.Fatalf("data %q, json says %q", fr.Data, data)
		}
	})
}

// hasDuplicateKeys reports whether any JSON object in b repeats a key.
func hasDuplicateKeys(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: v == '{', keys: map[string]bool{}, key: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}

// BenchmarkRead is the client's cost per received publication (compare
// with drive's BenchmarkWsgateRead: the client shares the CPU with the
// server under test).
func BenchmarkRead(b *testing.B) {
	msg := recordedBatch(b)
	frames := 0
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		_ = Dialect{}.Read(msg, func(drive.Frame) { frames++ })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}

// recordedBatch is the recorded message of 15 publications.
func recordedBatch(b *testing.B) []byte {
	raw, err := os.ReadFile("testdata/recorded.json")
	if err != nil {
		b.Fatal(err)
	}
	var msgs []string
	if err := json.Unmarshal(raw, &msgs); err != nil {
		b.Fatal(err)
	}
	return []byte(msgs[5])
}
