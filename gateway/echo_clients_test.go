package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// TestEchoGorilla talks to /echo with gorilla/websocket: text and binary
// messages of several sizes come back unchanged.
func TestEchoGorilla(t *testing.T) {
	addr := startEcho(t, nil)
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, size := range []int{0, 1, 125, 126, 65535, 65536} {
		for _, mt := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			msg := bytes.Repeat([]byte("a"), size)
			if err := c.WriteMessage(mt, msg); err != nil {
				t.Fatalf("write: %v", err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, data, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("read size %d: %v", size, err)
			}
			if got != mt || !bytes.Equal(data, msg) {
				t.Fatalf("size %d type %d: got type %d len %d", size, mt, got, len(data))
			}
		}
	}
	// Close handshake: the server echoes our code.
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "bye"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !asCloseError(err, &ce) || ce.Code != 4321 {
		t.Fatalf("close: got %v, want close 4321", err)
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

// TestEchoCoder talks to /echo with coder/websocket, pipelining messages.
func TestEchoCoder(t *testing.T) {
	addr := startEcho(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := cws.Dial(ctx, "ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	const n = 200
	go func() {
		for i := range n {
			if err := c.Write(ctx, cws.MessageText, fmt.Appendf(nil, "msg %d", i)); err != nil {
				return
			}
		}
	}()
	for i := range n {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if want := fmt.Sprintf("msg %d", i); typ != cws.MessageText || string(data) != want {
			t.Fatalf("got %q want %q", data, want)
		}
	}
	if err := c.Close(cws.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}
