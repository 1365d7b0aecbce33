package gateway_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/gateway"
)

func mp(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectReply reads the next message and checks it is a reply to id with
// the given error code (0: success).
func expectReply(t *testing.T, c *wsConn, id int, code int) {
	t.Helper()
	ev, err := c.next()
	if err != nil {
		t.Fatalf("want reply %d: %v", id, err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(ev.payload, &m); err != nil {
		t.Fatalf("reply %q: %v", ev.payload, err)
	}
	gotCode := "0"
	if e, ok := m["error"].(map[string]any); ok {
		gotCode = fmt.Sprint(e["code"])
	}
	if fmt.Sprint(m["id"]) != fmt.Sprint(id) || gotCode != fmt.Sprint(code) {
		t.Fatalf("got %v, want reply id %d with error code %d", m, id, code)
	}
}

// TestMalformedCommands: every bad input has one defined outcome (an error
// reply to the command's id, or a close code when no id can be read), the
// connection stays usable after error replies, nothing allocates in
// proportion to a declared length, and other clients never notice.
func TestMalformedCommands(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.MaxChannelsPerConn = 3 })
	addr := srv.Addr().String()
	bystander := dialWS(t, addr, "/ws")
	bystander.send(binFrame(mp(t, map[string]any{"id": 1, "cmd": "subscribe", "channel": "calm"})))
	expectReply(t, bystander, 1, 0)

	replies := []struct {
		name  string
		frame []byte
		id    int
		code  int
	}{
		{"unknown command", mp(t, map[string]any{"id": 2, "cmd": "explode"}), 2, 101},
		{"channel of the wrong type", mp(t, map[string]any{"id": 3, "cmd": "subscribe", "channel": 42}), 3, 100},
		{"missing channel", mp(t, map[string]any{"id": 4, "cmd": "publish"}), 4, 100},
		{"oversized channel name", mp(t, map[string]any{"id": 5, "cmd": "subscribe", "channel": strings.Repeat("a", 129)}), 5, 102},
		{"channel outside the grammar", mp(t, map[string]any{"id": 6, "cmd": "subscribe", "channel": "a b"}), 6, 102},
	}
	c := dialWS(t, addr, "/ws")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, r := range replies {
		c.send(binFrame(r.frame))
		expectReply(t, c, r.id, r.code)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("malformed commands allocated %d bytes", grew)
	}
	// Subscription limit, then the connection still works.
	for i := range 3 {
		c.send(binFrame(mp(t, map[string]any{"id": 10 + i, "cmd": "subscribe", "channel": fmt.Sprint("c", i)})))
		expectReply(t, c, 10+i, 0)
	}
	c.send(binFrame(mp(t, map[string]any{"id": 13, "cmd": "subscribe", "channel": "c3"})))
	expectReply(t, c, 13, 103)
	c.send(binFrame(mp(t, map[string]any{"id": 14, "cmd": "subscribe", "channel": "c0"})))
	expectReply(t, c, 14, 104)
	c.send(binFrame(mp(t, map[string]any{"id": 15, "cmd": "ping"})))
	expectReply(t, c, 15, 0)

	// Structural damage (no reply can be correlated): close 1007. The huge
	// declared lengths must not allocate what they declare.
	runtime.ReadMemStats(&before)
	closes := []struct {
		name string
		f    frame
		code uint16
	}{
		// str32 declaring 4 GiB right after a readable id.
		{"huge declared length", binFrame([]byte("\x82\xa2id\x07\xa3cmd\xdb\xff\xff\xff\xff")), 1007},
		{"huge declared array in an unknown key", binFrame([]byte("\x83\xa2id\x08\xa3cmd\xa4ping\xa1x\xdd\xff\xff\xff\xff")), 1007},
		{"huge declared map", binFrame([]byte("\xdf\xff\xff\xff\xff")), 1007},
		{"truncated map", binFrame([]byte{0x81}), 1007},
		{"not a map", binFrame([]byte{0x01}), 1007},
		{"empty frame", binFrame(nil), 1007},
		{"text frame on a msgpack connection", textFrame(`{"id":1,"cmd":"ping"}`), 1003},
		{"publish over the message limit", binFrame(mp(t, map[string]any{"id": 1, "cmd": "publish", "channel": "x", "data": bytes.Repeat([]byte("x"), 70<<10)})), 1009},
	}
	for _, cl := range closes {
		c := dialWS(t, addr, "/ws")
		c.send(cl.f)
		c.expectClose(cl.code)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("closing bad connections allocated %d bytes", grew)
	}

	// The bystander saw none of it and still gets its messages.
	pub := dialWS(t, addr, "/ws")
	pub.send(binFrame(mp(t, map[string]any{"id": 1, "cmd": "publish", "channel": "calm", "data": []byte("hi")})))
	expectReply(t, pub, 1, 0)
	ev, err := bystander.next()
	if err != nil || !bytes.Contains(ev.payload, []byte("hi")) {
		t.Fatalf("bystander: %v %v", ev, err)
	}
}
