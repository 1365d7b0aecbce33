package gateway_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/deflate"
)

const offerDeflate = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"

// zFrame is a data frame carrying payload compressed (RSV1 set).
func zFrame(op byte, payload []byte) frame {
	return frame{op: op, payload: deflate.Compress(nil, payload), fin: true, rsv: 4}
}

// TestDeflateInboundRules: every inbound rule of permessage-deflate on a
// socket (raw frames against /echo with a 64 KiB message limit).
func TestDeflateInboundRules(t *testing.T) {
	doc := readDocument(t)
	z := deflate.Compress(nil, doc)
	half := len(z) / 2
	bomb := deflate.Compress(nil, make([]byte, 1<<20)) // about 1 KB inflating to 1 MiB
	cases := []struct {
		name  string
		offer bool
		send  []frame
		check func(c *wsConn)
	}{
		{"compressed text is inflated; the echo comes back compressed", true, []frame{zFrame(opText, doc)}, func(c *wsConn) {
			c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
			f, err := c.readFrame()
			if err != nil || !f.rsv1 || f.op != opText {
				c.t.Fatalf("echo frame: rsv1 %v op %#x, %v", f.rsv1, f.op, err)
			}
			if got := c.inflate(true, f.payload); !bytes.Equal(got, doc) {
				c.t.Fatalf("echo inflates to %d bytes", len(got))
			}
		}},
		{"a small compressed message comes back plain", true, []frame{zFrame(opBinary, []byte("hello"))}, func(c *wsConn) {
			c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
			f, err := c.readFrame()
			if err != nil || f.rsv1 || string(f.payload) != "hello" {
				c.t.Fatalf("echo frame: rsv1 %v %q, %v", f.rsv1, f.payload, err)
			}
		}},
		{"plain messages still work", true, []frame{textFrame("plain")}, func(c *wsConn) { c.expectMessage(opText, []byte("plain")) }},
		{"fragmented compressed message with a ping inside", true, []frame{
			{op: opText, payload: z[:half], rsv: 4}, pingFrame("p"), {op: opCont, payload: z[half:], fin: true},
		}, func(c *wsConn) { c.expectPong([]byte("p")); c.expectMessage(opText, doc) }},
		{"RSV1 without negotiation: 1002", false, []frame{zFrame(opText, doc)}, func(c *wsConn) { c.expectClose(closeProtocol) }},
		{"RSV1 on a ping: 1002", true, []frame{pingFrame("p").withRSV(4)}, func(c *wsConn) { c.expectClose(closeProtocol) }},
		{"RSV1 on a close: 1002", true, []frame{closeFrame(1000, "").withRSV(4)}, func(c *wsConn) { c.expectClose(closeProtocol) }},
		{"RSV1 on a continuation: 1002", true, []frame{{op: opText, payload: z[:half], rsv: 4}, {op: opCont, payload: z[half:], fin: true, rsv: 4}},
			func(c *wsConn) { c.expectClose(closeProtocol) }},
		{"RSV2 stays an error: 1002", true, []frame{textFrame("x").withRSV(2)}, func(c *wsConn) { c.expectClose(closeProtocol) }},
		{"invalid deflate data: 1007", true, []frame{{op: opBinary, payload: []byte{0xff, 0xff, 0xff, 0xff}, fin: true, rsv: 4}},
			func(c *wsConn) { c.expectClose(closeInvalidData) }},
		{"truncated deflate data: 1007", true, []frame{{op: opBinary, payload: z[:half], fin: true, rsv: 4}},
			func(c *wsConn) { c.expectClose(closeInvalidData) }},
		{"inflated text not UTF-8: 1007", true, []frame{zFrame(opText, []byte{'a', 0xff, 'b'})}, func(c *wsConn) { c.expectClose(closeInvalidData) }},
		{"1 KB inflating to 1 MiB: 1009", true, []frame{{op: opBinary, payload: bomb, fin: true, rsv: 4}}, func(c *wsConn) { c.expectClose(closeTooBig) }},
	}
	srv := startServer(t, func(c *gateway.Config) { c.MaxMessageBytes = defaultLimit })
	addr := srv.Addr().String()
	if len(bomb) > 1100 {
		t.Fatalf("bomb is %d bytes, want about 1 KB", len(bomb))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *wsConn
			if tc.offer {
				c = dialWSWith(t, addr, "/echo", offerDeflate)
				if !c.deflate {
					t.Fatal("permessage-deflate was not negotiated")
				}
			} else {
				c = dialWS(t, addr, "/echo")
			}
			c.send(tc.send...)
			tc.check(c)
		})
	}
}

// TestDeflateNamespaces: a namespace with "compression": false keeps its
// publications plain for a subscriber that negotiated compression; the
// default namespace compresses them, once for all subscribers; replies
// over --compression-min-bytes are compressed too.
func TestDeflateNamespaces(t *testing.T) {
	doc := readDocument(t)
	srv := startServer(t, func(c *gateway.Config) {
		def := c.DefaultNamespace()
		raw := def
		raw.Compression = false
		ns, err := gateway.NewNamespaces(def, map[string]gateway.Namespace{"raw": raw})
		if err != nil {
			t.Fatal(err)
		}
		c.Namespaces = ns
	})
	addr := srv.Addr().String()
	sub := dialWSWith(t, addr, "/ws", "Sec-WebSocket-Protocol: wsgate.v1.json", offerDeflate)
	pub := dialWSWith(t, addr, "/ws", "Sec-WebSocket-Protocol: wsgate.v1.json", offerDeflate)
	readOne := func(c *wsConn) serverFrame {
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		f, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i, ch := range []string{"plain:x", "raw:x"} {
		sub.send(textFrame(fmt.Sprintf(`{"id":%d,"cmd":"subscribe","channel":%q}`, i+1, ch)))
		if f := readOne(sub); f.rsv1 || !bytes.Contains(f.payload, []byte(`"reply"`)) {
			t.Fatalf("subscribe %s: %q", ch, f.payload)
		}
	}
	for i, ch := range []string{"plain:x", "raw:x"} {
		before := srv.Hub().Stats().Compressed.Load()
		pub.send(textFrame(fmt.Sprintf(`{"id":%d,"cmd":"publish","channel":%q,"data":%s}`, i+1, ch, doc)))
		readOne(pub) // the reply
		f := readOne(sub)
		payload := sub.inflate(f.rsv1, f.payload)
		if !bytes.Contains(payload, []byte(`"channel":"`+ch+`"`)) {
			t.Fatalf("%s: push %.100q", ch, payload)
		}
		compressed := srv.Hub().Stats().Compressed.Load() - before
		if want := ch == "plain:x"; f.rsv1 != want || (compressed == 1) != want {
			t.Fatalf("%s: push compressed %v (hub compressions %d), want %v", ch, f.rsv1, compressed, want)
		}
	}
	// A history reply carrying the document is over the threshold.
	sub.send(textFrame(`{"id":9,"cmd":"history","channel":"plain:x","limit":1}`))
	if f := readOne(sub); !f.rsv1 || !bytes.Contains(sub.inflate(true, f.payload), []byte(`"order.updated"`)) {
		t.Fatalf("history reply: compressed %v", f.rsv1)
	}
}
