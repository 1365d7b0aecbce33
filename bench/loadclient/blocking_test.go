package loadclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// serveOnce accepts one connection, reads its upgrade request and answers
// with status; a 101 is followed by a text frame "hi" and a close 4029.
func serveOnce(t *testing.T, status int) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		if status != 101 {
			io.WriteString(c, "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n")
			return
		}
		frames := append([]byte{0x81, 2, 'h', 'i', 0x88, 2}, binary.BigEndian.AppendUint16(nil, 4029)...)
		proto := ""
		if p := req.Header.Get("Sec-WebSocket-Protocol"); p != "" {
			proto = "Sec-WebSocket-Protocol: " + p + "\r\n"
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+proto+
			"Sec-WebSocket-Accept: "+acceptFor(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n"+string(frames))
		time.Sleep(100 * time.Millisecond)
	}()
	return ln.Addr().String()
}

func TestUpgradeAndReadFrames(t *testing.T) {
	addr := serveOnce(t, 101)
	c, err := Dialer{Src: "127.0.0.1", RcvBuf: 4096, Timeout: time.Second}.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	status, rest, err := Upgrade(c, addr, "/ws", "msgpack")
	if err != nil || status != "101" {
		t.Fatalf("status %q, %v", status, err)
	}
	var got []string
	code := 0
	err = ReadFrames(io.MultiReader(bytes.NewReader(rest), c), 1<<20, FrameHandlers{
		Message: func(op byte, p []byte) { got = append(got, string(p)) },
		Close:   func(c int) { code = c },
	})
	if err != nil || strings.Join(got, ",") != "hi" || code != 4029 {
		t.Fatalf("frames %q, close %d, err %v", got, code, err)
	}
}

func TestUpgradeRefused(t *testing.T) {
	addr := serveOnce(t, 429)
	c, err := Dialer{Timeout: time.Second}.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if status, rest, err := Upgrade(c, addr, "/ws", ""); status != "429" || rest != nil || err != nil {
		t.Fatalf("status %q, rest %q, %v", status, rest, err)
	}
}

// TestReadFramesEOF: a server that goes away without a close frame ends
// the read with io.EOF; a masked frame is a protocol error.
func TestReadFramesEOF(t *testing.T) {
	if err := ReadFrames(bytes.NewReader([]byte{0x82, 1, 'x'}), 1<<20, FrameHandlers{}); err != io.EOF {
		t.Fatalf("got %v, want EOF", err)
	}
	masked := ClientFrame(wsframe.OpBinary, []byte("x"))
	if err := ReadFrames(bytes.NewReader(masked), 1<<20, FrameHandlers{}); err == nil {
		t.Fatal("a masked server frame was accepted")
	}
}

// TestMessageReader: messages one at a time, a ping answered with a
// masked pong of the same payload, then the close frame's code for good.
func TestMessageReader(t *testing.T) {
	in := append([]byte{0x89, 2, 'p', 'q', 0x82, 1, 'a', 0x81, 1, 'b', 0x88, 2}, binary.BigEndian.AppendUint16(nil, 1001)...)
	var pong bytes.Buffer
	m := NewMessageReader(bytes.NewReader(in), &pong, 1<<20)
	for _, want := range []string{"a", "b"} {
		if msg, err := m.Next(); err != nil || string(msg.Payload) != want {
			t.Fatalf("got %q (%v), want %q", msg.Payload, err, want)
		}
	}
	for range 2 {
		if _, err := m.Next(); err == nil || err.(*CloseError).Code != 1001 {
			t.Fatalf("after the close frame: %v", err)
		}
	}
	p := pong.Bytes()
	if len(p) != 2+4+2 || p[0] != 0x8a || p[1] != 0x80|2 || p[6]^p[2] != 'p' || p[7]^p[3] != 'q' {
		t.Fatalf("pong % x", p)
	}
}
