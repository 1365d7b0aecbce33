package naive

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coder/websocket"

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
