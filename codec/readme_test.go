package codec

import (
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The examples in README.md are part of the spec: these tests build each
// example with this package's encoders and find it, byte for byte, in the
// document (JSON verbatim, MessagePack as the hex dump that follows it).
// A change to either side that is not made to the other fails here.

// readme returns README.md with the hex dumps normalised to one line each.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var hexBlock = regexp.MustCompile("(?s)```\n([0-9a-f]{2}(?:[ \n][0-9a-f]{2})*)\n```")

// hexDumps lists every hex block of the document as bytes.
func hexDumps(t *testing.T, doc string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, m := range hexBlock.FindAllStringSubmatch(doc, -1) {
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(m[1]))
		if err != nil {
			t.Fatalf("hex block %q: %v", m[1], err)
		}
		out = append(out, b)
	}
	return out
}

func hasDump(dumps [][]byte, want []byte) bool {
	for _, d := range dumps {
		if string(d) == string(want) {
			return true
		}
	}
	return false
}

// readmeExample is one example of the document, built by this package.
type readmeExample struct {
	name string
	json []byte // must appear verbatim (nil: not shown in JSON)
	mp   []byte // must appear as a hex dump (nil: not shown)
}

func TestReadmeExamples(t *testing.T) {
	doc := readme(t)
	dumps := hexDumps(t, doc)
	hi := []byte("hi")
	textHi := []byte(`{"text":"hi"}`)
	examples := []readmeExample{
		{name: "message push",
			json: AppendMessage(nil, JSON, "chat:room1", 42, "xq3", textHi),
			mp:   AppendMessage(nil, Msgpack, "chat:room1", 42, "xq3", hi)},
		{name: "message push b64",
			json: AppendMessage(nil, JSON, "chat:room1", 42, "xq3", hi)},
		{name: "epoch push",
			json: AppendEpoch(nil, JSON, "chat:room1", "k2", "xq3", 36)},
		{name: "gap push",
			json: AppendGap(nil, JSON, "chat:room1", 7, 9)},
		{name: "join push",
			json: AppendJoin(nil, JSON, "chat:room1", "c-81f2", "42")},
		{name: "refresh push", json: AppendRefresh(nil, JSON)},
		{name: "unsubscribe push", json: AppendUnsubscribe(nil, JSON, "chat:room1")},
		{name: "subscribe reply",
			json: AppendReply(nil, JSON, Reply{ID: 1, Cmd: CmdSubscribe, Offset: 41, Epoch: "xq3"}),
			mp:   AppendReply(nil, Msgpack, Reply{ID: 1, Cmd: CmdSubscribe, Offset: 41, Epoch: "xq3"})},
		{name: "resumed subscribe reply",
			json: AppendReply(nil, JSON, Reply{ID: 2, Cmd: CmdSubscribe, Offset: 57, Epoch: "xq3", Resumed: true, Recovered: true})},
		{name: "replayed publish reply",
			json: AppendReply(nil, JSON, Reply{ID: 10, Cmd: CmdPublish, Offset: 12, Epoch: "xq3", Replayed: true})},
		{name: "error reply",
			json: AppendError(nil, JSON, 3, CodeBadChannel, "bad channel name"),
			mp:   AppendError(nil, Msgpack, 3, CodeBadChannel, "bad channel name")},
	}
	examples = append(examples, readmeWireExamples(t)...)
	shown := 0
	for _, ex := range examples {
		if ex.mp != nil && hasDump(dumps, ex.mp) {
			shown++
		}
	}
	if shown != len(dumps) {
		t.Errorf("README.md has %d hex dumps, %d of them built here: every dump must be an example below", len(dumps), shown)
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			if ex.json != nil && !strings.Contains(doc, string(ex.json)) {
				t.Errorf("README.md does not show the JSON this package writes:\n%s", ex.json)
			}
			if ex.mp != nil && !hasDump(dumps, ex.mp) {
				t.Errorf("README.md has no hex dump of the MessagePack this package writes:\n% x", ex.mp)
			}
		})
	}
}

// readmeWireExamples are the document's MessagePack commands (§3) and
// broker envelopes (§11), built with the client-side and backend-side
// encoders.
func readmeWireExamples(t *testing.T) []readmeExample {
	t.Helper()
	command := func(c Command) []byte {
		b, err := AppendCommand(nil, Msgpack, &c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	envelope := func(p Publication) []byte {
		b, err := EncodePublication(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	room := []byte("chat:room1")
	return []readmeExample{
		{name: "subscribe command", mp: command(Command{ID: 1, Cmd: CmdSubscribe, Channel: room})},
		{name: "publish command", mp: command(Command{ID: 2, Cmd: CmdPublish, Channel: room, Data: []byte("hi")})},
		{name: "join envelope", mp: envelope(Publication{Channel: room, Kind: KindJoin, Client: []byte("c-81f2"), User: []byte("42")})},
		{name: "publication envelope", mp: envelope(Publication{Channel: room, Data: []byte("hi"), Offset: 42,
			Epoch: []byte("xq3"), Node: []byte("gw-1"), Time: 1732640000123})},
	}
}

// TestReadmeCommandExamples decodes every JSON command example of §3 with
// the gateway's decoder: each must be accepted as the command it shows.
func TestReadmeCommandExamples(t *testing.T) {
	doc := readme(t)
	cmds := regexp.MustCompile(`\{"id":\d+,"cmd":[^\n]*\}`).FindAllString(doc, -1)
	if len(cmds) < 10 {
		t.Fatalf("found %d command examples, want the §3 set", len(cmds))
	}
	for _, c := range cmds {
		var cmd Command
		if err := DecodeCommand(JSON, []byte(c), &cmd); err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		// Round trip through the client-side encoder.
		out, err := AppendCommand(nil, Msgpack, &cmd)
		if err != nil {
			t.Errorf("%s: encode: %v", c, err)
			continue
		}
		var back Command
		if err := DecodeCommand(Msgpack, out, &back); err != nil || back.Cmd != cmd.Cmd || string(back.IdempotencyKey) != string(cmd.IdempotencyKey) {
			t.Errorf("%s: msgpack round trip: %v %+v", c, err, back)
		}
	}
}

// TestReadmeErrorCodes checks the §6 table against ErrorCode.
func TestReadmeErrorCodes(t *testing.T) {
	doc := readme(t)
	row := regexp.MustCompile(`(?m)^\| (1\d\d) \| ([a-z ]+) \|`)
	found := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		found[m[1]] = m[2]
	}
	for code := CodeBadRequest; code <= CodeKeyReused; code++ {
		name, ok := found[strconv.Itoa(int(code))]
		if !ok {
			t.Errorf("error code %d is not in the README table", code)
			continue
		}
		if !strings.HasPrefix(code.String(), name) {
			t.Errorf("code %d: README calls it %q, the code %q", code, name, code.String())
		}
	}
}
