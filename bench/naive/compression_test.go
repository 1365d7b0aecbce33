package naive

import (
	"bytes"
	"compress/flate"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// TestCompression: with Compression on, an offer of permessage-deflate is
// accepted and publications still arrive intact; with it off (gorilla's
// default) the offer is ignored.
func TestCompression(t *testing.T) {
	for _, on := range []bool{true, false} {
		ts := startServer(t, Config{Compression: on})
		c, resp, err := websocket.Dial(testCtx(t), ts.url("/ws"), &websocket.DialOptions{
			CompressionMode: websocket.CompressionNoContextTakeover, CompressionThreshold: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if strings.Contains(ext, "permessage-deflate") != on {
			t.Fatalf("Compression %v: extensions answered %q", on, ext)
		}
		send(t, c, codec.Msgpack, subscribeCmd(1, room))
		expectReply(t, c, codec.Msgpack, 1)
		data := bytes.Repeat([]byte(`{"k":"compressible"}`), 50)
		send(t, c, codec.Msgpack, publishCmd(2, room, data))
		// The reply and the message push come in either order.
		for range 2 {
			f := read(t, c, codec.Msgpack)
			if f.str("type") != "message" {
				continue
			}
			if got, _ := f["data"].([]byte); !bytes.Equal(got, data) {
				t.Fatalf("Compression %v: data of %d bytes came back as %d", on, len(data), len(got))
			}
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
}

// TestCompressionModes: in either mode a subscriber that negotiated
// permessage-deflate receives each publication as one compressed (RSV1)
// frame that inflates to the push; per-connection mode hands gorilla the
// encoded payload (compressed on every connection by WriteMessage), the
// prepared mode a PreparedMessage (compressed once).
func TestCompressionModes(t *testing.T) {
	// Without Compression the mode changes nothing: every push is prepared.
	if ts := startServer(t, Config{CompressionMode: CompressionPerConnection}); ts.hub.perConn {
		t.Fatal("per-connection mode without Compression")
	}
	for _, mode := range []CompressionMode{CompressionPerConnection, CompressionPrepared} {
		t.Run(string(mode), func(t *testing.T) {
			ts := startServer(t, Config{Compression: true, CompressionMode: mode})
			push := ts.hub.push(codec.Msgpack, &codec.Publication{Kind: codec.KindPublication, Channel: []byte(room), Data: []byte("x")})
			if perConn := push.prepared == nil && push.data != nil; perConn != (mode == CompressionPerConnection) {
				t.Fatalf("mode %s: push %+v", mode, push)
			}
			sub := dialDeflate(t, ts)
			sub.send(t, subscribeCmd(1, room))
			if f, _ := sub.next(t); f.str("type") != codec.TypeReply {
				t.Fatalf("want the subscribe reply, got %v", f)
			}
			pub := dial(t, ts, "/ws")
			data := bytes.Repeat([]byte(`{"k":"compressible"}`), 50)
			send(t, pub, codec.Msgpack, publishCmd(2, room, data))
			expectReply(t, pub, codec.Msgpack, 2)
			f, rsv1 := sub.next(t)
			if f.str("type") != codec.TypeMessage || !rsv1 {
				t.Fatalf("want a compressed message push, got RSV1 %v: %v", rsv1, f)
			}
			if got, _ := f["data"].([]byte); !bytes.Equal(got, data) {
				t.Fatalf("data of %d bytes came back as %d", len(data), len(got))
			}
		})
	}
}

func TestParseCompressionMode(t *testing.T) {
	for in, want := range map[string]CompressionMode{
		"": CompressionPrepared, "prepared": CompressionPrepared, "per-connection": CompressionPerConnection,
	} {
		if got, err := ParseCompressionMode(in); err != nil || got != want {
			t.Errorf("ParseCompressionMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"per-message", "Prepared", "once"} {
		if _, err := ParseCompressionMode(in); err == nil {
			t.Errorf("ParseCompressionMode(%q): no error", in)
		}
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", CompressionMode: "zlib"}, nil); err == nil {
		t.Error("New accepted an unknown compression mode")
	}
}

// rawConn is a client that sees frame headers (RSV1), which the
// WebSocket libraries hide: MessagePack, permessage-deflate offered.
type rawConn struct {
	conn net.Conn
	r    io.Reader
}

func dialDeflate(t *testing.T, ts *testServer) *rawConn {
	t.Helper()
	d := ws.Dialer{Extensions: []httphead.Option{{Name: []byte("permessage-deflate")}}}
	conn, br, hs, err := d.Dial(testCtx(t), ts.url("/ws"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if len(hs.Extensions) != 1 {
		t.Fatalf("permessage-deflate not negotiated: %v", hs.Extensions)
	}
	c := &rawConn{conn: conn, r: conn}
	if br != nil {
		c.r = br
	}
	return c
}

func (c *rawConn) send(t *testing.T, cmd codec.Command) {
	t.Helper()
	b, err := codec.AppendCommand(nil, codec.Msgpack, &cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteFrame(c.conn, ws.MaskFrameInPlace(ws.NewBinaryFrame(b))); err != nil {
		t.Fatal(err)
	}
}

// next reads the next data frame (a whole message: the server's pushes fit
// one frame), inflating it when RSV1 says it is compressed.
func (c *rawConn) next(t *testing.T) (frame, bool) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			t.Fatal(err)
		}
		if h.OpCode.IsControl() {
			continue
		}
		if !h.Fin || h.OpCode != ws.OpBinary {
			t.Fatalf("unexpected frame %+v", h)
		}
		if h.Rsv1() {
			payload = inflate(t, payload)
		}
		return decodeFrame(t, codec.Msgpack, websocket.MessageBinary, payload), h.Rsv1()
	}
}

// inflate undoes RFC 7692's compression with the standard library: the
// stripped sync flush tail, then an empty final block to end the stream.
func inflate(t *testing.T, p []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p),
		strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff"))))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}
