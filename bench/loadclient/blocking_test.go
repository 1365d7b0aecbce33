package loadclient

import (
	"bufio"
	"bytes"
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
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+acceptFor(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n"+string(frames))
		time.Sleep(100 * time.Millisecond)
	}()
	return ln.Addr().String()
}

func TestUpgradeAndReadFrames(t *testing.T) {
	addr := serveOnce(t, 101)
	c, err := DialFrom(addr, "127.0.0.1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	status, rest, err := Upgrade(c, addr, "/ws")
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
	c, err := DialFrom(addr, "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if status, rest, err := Upgrade(c, addr, "/ws"); status != "429" || rest != nil || err != nil {
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
