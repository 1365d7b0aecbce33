package naive

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/codec"
)

const room = "chat:room1"

func subscribeCmd(id uint32, ch string) codec.Command {
	return codec.Command{ID: id, Cmd: codec.CmdSubscribe, Channel: []byte(ch)}
}

func publishCmd(id uint32, ch string, data []byte) codec.Command {
	return codec.Command{ID: id, Cmd: codec.CmdPublish, Channel: []byte(ch), Data: data}
}

// expectReply reads one frame and checks it is the success reply to id.
func expectReply(t *testing.T, c *websocket.Conn, enc codec.Encoding, id uint32) frame {
	t.Helper()
	f := read(t, c, enc)
	if f.str("type") != codec.TypeReply || f.num("id") != uint64(id) || f.errorCode(enc) != 0 {
		t.Fatalf("want reply %d, got %v", id, f)
	}
	return f
}

func expectError(t *testing.T, c *websocket.Conn, enc codec.Encoding, id uint32, code codec.ErrorCode) {
	t.Helper()
	f := read(t, c, enc)
	if f.str("type") != codec.TypeReply || f.num("id") != uint64(id) || f.errorCode(enc) != code {
		t.Fatalf("want error %d for id %d, got %v", code, id, f)
	}
}

func expectMessage(t *testing.T, c *websocket.Conn, enc codec.Encoding, ch string, offset uint64) frame {
	t.Helper()
	f := read(t, c, enc)
	if f.str("type") != codec.TypeMessage || f.str("channel") != ch || f.num("offset") != offset {
		t.Fatalf("want message on %s at %d, got %v", ch, offset, f)
	}
	return f
}

// TestMsgpackRoundTrip: subscribe, publish from another client, receive
// with offsets in order; unsubscribe releases the channel.
func TestMsgpackRoundTrip(t *testing.T) {
	ts := startServer(t, Config{})
	sub := dial(t, ts, "/ws") // no subprotocol: MessagePack, no header
	if p := sub.Subprotocol(); p != "" {
		t.Fatalf("subprotocol %q echoed although none was offered", p)
	}
	pub := dial(t, ts, "/ws", codec.SubprotocolMsgpack)
	if p := pub.Subprotocol(); p != codec.SubprotocolMsgpack {
		t.Fatalf("subprotocol %q", p)
	}

	send(t, sub, codec.Msgpack, subscribeCmd(1, room))
	r := expectReply(t, sub, codec.Msgpack, 1)
	epoch := r.str("epoch")
	if epoch == "" || r.num("offset") != 0 {
		t.Fatalf("subscribe reply %v", r)
	}

	for i := uint64(1); i <= 20; i++ {
		send(t, pub, codec.Msgpack, publishCmd(uint32(100+i), room, []byte{'h', 'i', byte(i)}))
		r := expectReply(t, pub, codec.Msgpack, uint32(100+i))
		if r.num("offset") != i || r.str("epoch") != epoch {
			t.Fatalf("publish reply %v", r)
		}
	}
	for i := uint64(1); i <= 20; i++ {
		m := expectMessage(t, sub, codec.Msgpack, room, i)
		if data, _ := m["data"].([]byte); !bytes.Equal(data, []byte{'h', 'i', byte(i)}) {
			t.Fatalf("data %v", m["data"])
		}
	}

	send(t, sub, codec.Msgpack, codec.Command{ID: 2, Cmd: codec.CmdPing})
	expectReply(t, sub, codec.Msgpack, 2)
	send(t, sub, codec.Msgpack, codec.Command{ID: 3, Cmd: codec.CmdUnsubscribe, Channel: []byte(room)})
	expectReply(t, sub, codec.Msgpack, 3)
	if n := ts.hub.subscribers(room); n != 0 {
		t.Fatalf("%d subscribers after unsubscribe", n)
	}
	// Nobody listens here now; the broker still takes the publication.
	send(t, pub, codec.Msgpack, publishCmd(4, room, []byte("x")))
	expectReply(t, pub, codec.Msgpack, 4)
}

// TestJSONMode: JSON clients get text frames, JSON data embedded as is,
// and binary data from a MessagePack publisher as b64.
func TestJSONMode(t *testing.T) {
	ts := startServer(t, Config{})
	js := dial(t, ts, "/ws", codec.SubprotocolJSON)
	if p := js.Subprotocol(); p != codec.SubprotocolJSON {
		t.Fatalf("subprotocol %q", p)
	}
	mp := dial(t, ts, "/ws")
	send(t, js, codec.JSON, subscribeCmd(1, room))
	expectReply(t, js, codec.JSON, 1)
	send(t, mp, codec.Msgpack, subscribeCmd(1, room))
	expectReply(t, mp, codec.Msgpack, 1)

	send(t, js, codec.JSON, publishCmd(2, room, []byte(`{"text":"hi"}`)))
	// The reply and the push may come in either order: the push is queued
	// during Publish, the reply after it.
	var gotReply, gotMsg bool
	for range 2 {
		f := read(t, js, codec.JSON)
		switch f.str("type") {
		case codec.TypeReply:
			gotReply = f.num("id") == 2 && f.num("offset") == 1
		case codec.TypeMessage:
			gotMsg = f.num("offset") == 1 && string(f["data"].(json.RawMessage)) == `{"text":"hi"}`
		}
	}
	if !gotReply || !gotMsg {
		t.Fatalf("reply %v, message %v", gotReply, gotMsg)
	}
	m := expectMessage(t, mp, codec.Msgpack, room, 1)
	if !bytes.Equal(m["data"].([]byte), []byte(`{"text":"hi"}`)) {
		t.Fatalf("msgpack receiver got %q", m["data"])
	}

	send(t, mp, codec.Msgpack, publishCmd(3, room, []byte{0, 1, 2}))
	m = expectMessage(t, js, codec.JSON, room, 2)
	if m.str("b64") != "AAEC" || m["data"] != nil {
		t.Fatalf("binary data to JSON: %v", m)
	}
}

// TestSubprotocolClientOrder: the first supported protocol in the client's
// order wins; unknown ones are skipped.
func TestSubprotocolClientOrder(t *testing.T) {
	ts := startServer(t, Config{})
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{codec.SubprotocolJSON, codec.SubprotocolMsgpack}, codec.SubprotocolJSON},
		{[]string{codec.SubprotocolMsgpack, codec.SubprotocolJSON}, codec.SubprotocolMsgpack},
		{[]string{"chat", codec.SubprotocolJSON}, codec.SubprotocolJSON},
		{[]string{"chat"}, ""},
	} {
		c := dial(t, ts, "/ws", tc.offer...)
		if got := c.Subprotocol(); got != tc.want {
			t.Errorf("offer %v: got %q, want %q", tc.offer, got, tc.want)
		}
		_ = c.CloseNow()
	}
}

func TestErrorReplies(t *testing.T) {
	ts := startServer(t, Config{})
	c := dial(t, ts, "/ws")
	send(t, c, codec.Msgpack, subscribeCmd(1, "bad channel"))
	expectError(t, c, codec.Msgpack, 1, codec.CodeBadChannel)
	send(t, c, codec.Msgpack, subscribeCmd(2, room))
	expectReply(t, c, codec.Msgpack, 2)
	send(t, c, codec.Msgpack, subscribeCmd(3, room))
	expectError(t, c, codec.Msgpack, 3, codec.CodeAlreadySubscribed)
	send(t, c, codec.Msgpack, codec.Command{ID: 4, Cmd: codec.CmdUnsubscribe, Channel: []byte("other")})
	expectError(t, c, codec.Msgpack, 4, codec.CodeNotSubscribed)
	send(t, c, codec.Msgpack, codec.Command{ID: 5, Cmd: codec.CmdHistory, Channel: []byte(room)})
	expectError(t, c, codec.Msgpack, 5, codec.CodeNotAvailable)
	// A well-formed map without "cmd": answerable, so an error reply.
	if err := c.Write(testCtx(t), websocket.MessageBinary, []byte{0x81, 0xa2, 'i', 'd', 0x06}); err != nil {
		t.Fatal(err)
	}
	expectError(t, c, codec.Msgpack, 6, codec.CodeBadRequest)

	// Resuming: nothing missed is recovered, anything else is not.
	r := codec.Command{ID: 7, Cmd: codec.CmdSubscribe, Channel: []byte("chat:r2"), HasOffset: true, HasEpoch: true, Epoch: []byte("old")}
	send(t, c, codec.Msgpack, r)
	if f := expectReply(t, c, codec.Msgpack, 7); f["recovered"] != false || f.str("reason") == "" {
		t.Fatalf("resume from another epoch: %v", f)
	}
}

// TestProtocolCloses: wrong frame type 1003, not a command 1007, too big
// 1009 (the last sent by gorilla itself).
func TestProtocolCloses(t *testing.T) {
	ts := startServer(t, Config{MaxMessageBytes: 1024})
	for _, tc := range []struct {
		name  string
		proto string
		typ   websocket.MessageType
		msg   []byte
		want  websocket.StatusCode
	}{
		{"text on msgpack", "", websocket.MessageText, []byte(`{"cmd":"ping"}`), websocket.StatusUnsupportedData},
		{"binary on json", codec.SubprotocolJSON, websocket.MessageBinary, []byte{0x80}, websocket.StatusUnsupportedData},
		{"not a command", "", websocket.MessageBinary, []byte{0xc1}, websocket.StatusInvalidFramePayloadData},
		{"invalid json", codec.SubprotocolJSON, websocket.MessageText, []byte(`{"id":`), websocket.StatusInvalidFramePayloadData},
		{"too big", "", websocket.MessageBinary, make([]byte, 2048), websocket.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var offer []string
			if tc.proto != "" {
				offer = []string{tc.proto}
			}
			c := dial(t, ts, "/ws", offer...)
			if err := c.Write(testCtx(t), tc.typ, tc.msg); err != nil {
				t.Fatal(err)
			}
			if got := closeStatus(t, c); got != tc.want {
				t.Fatalf("close %d, want %d", got, tc.want)
			}
		})
	}
	// gorilla writes the 1009 before its read returns the error we count,
	// so the last count may land just after the client saw the close.
	waitFor(t, 5*time.Second, "5 protocol errors counted", func() bool { return ts.metrics.ProtocolErrors.Load() == 5 })
	time.Sleep(50 * time.Millisecond)
	if n := ts.metrics.ProtocolErrors.Load(); n != 5 {
		t.Errorf("protocol errors counted: %d", n)
	}
}

func TestOriginChecked(t *testing.T) {
	ts := startServer(t, Config{})
	hdr := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err := websocket.Dial(testCtx(t), ts.url("/ws"), &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v, %v", resp, err)
	}
	if ts.metrics.HandshakesFailed.Load() != 1 {
		t.Errorf("failed handshakes: %d", ts.metrics.HandshakesFailed.Load())
	}
}
