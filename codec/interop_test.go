package codec

import (
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

// The README's backend example, run by another language's MessagePack
// library (Debian's python3-msgpack, which `make deps` installs). Skipped
// where it is missing.
func TestPythonProducedFrames(t *testing.T) {
	const script = `
import msgpack, sys
env = msgpack.packb({"v": 1, "ch": "chat:room1", "data": b'{"text":"hi"}', "node": "billing-svc", "ts": 1732640000123})
cmd = msgpack.packb({"id": 7, "cmd": "publish", "channel": "chat:room1", "data": b"\x00\xff", "extra": [1.5, {"k": None}]})
sys.stdout.write(env.hex() + " " + cmd.hex())
`
	out, err := exec.Command("/usr/bin/python3", "-c", script).Output()
	if err != nil {
		t.Skipf("python3 with msgpack not available: %v", err)
	}
	parts := strings.Fields(string(out))
	env, err1 := hex.DecodeString(parts[0])
	cmdFrame, err2 := hex.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("bad output %q", out)
	}
	var p Publication
	if err := DecodePublication(env, &p); err != nil {
		t.Fatal(err)
	}
	want := Publication{Channel: bs("chat:room1"), Data: bs(`{"text":"hi"}`), Node: bs("billing-svc"), Time: 1732640000123}
	if !samePublication(&p, &want) {
		t.Fatalf("envelope: got %+v", p)
	}
	var c Command
	if err := DecodeCommand(Msgpack, cmdFrame, &c); err != nil {
		t.Fatal(err)
	}
	if wantC := (Command{ID: 7, Cmd: CmdPublish, Channel: bs("chat:room1"), Data: []byte{0, 0xff}}); !sameCommand(&c, &wantC) {
		t.Fatalf("command: got %s", cmdString(&c))
	}
}
