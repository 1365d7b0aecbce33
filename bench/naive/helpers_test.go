package naive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a Server running Serve on a loopback port.
type testServer struct {
	*Server
	cancel context.CancelFunc
	done   chan error
}

// startServer runs a server with cfg on ephemeral ports; it is shut down
// at the end of the test if the test did not do it.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.DebugListen = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Error(err)
		}
	})
	return ts
}

// stop cancels Serve and waits for it; safe to call twice.
func (ts *testServer) stop() error {
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		return err
	case <-time.After(15 * time.Second):
		return fmt.Errorf("Serve did not return after cancel")
	}
}

func (ts *testServer) url(path string) string { return "ws://" + ts.Addr().String() + path }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial opens a coder/websocket client, closed at the end of the test.
func dial(t *testing.T, ts *testServer, path string, protos ...string) *websocket.Conn {
	t.Helper()
	return dialWith(t, ts, path, nil, protos...)
}

func dialWith(t *testing.T, ts *testServer, path string, hc *http.Client, protos ...string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(testCtx(t), ts.url(path), &websocket.DialOptions{Subprotocols: protos, HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// smallWindowClient dials with a tiny receive buffer, so a client that
// stops reading backs the server up after a few kilobytes.
func smallWindowClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// send encodes and writes one command in c's encoding.
func send(t *testing.T, c *websocket.Conn, enc codec.Encoding, cmd codec.Command) {
	t.Helper()
	b, err := codec.AppendCommand(nil, enc, &cmd)
	if err != nil {
		t.Fatal(err)
	}
	typ := websocket.MessageBinary
	if enc == codec.JSON {
		typ = websocket.MessageText
	}
	if err := c.Write(testCtx(t), typ, b); err != nil {
		t.Fatalf("write %s: %v", cmd.Cmd, err)
	}
}

// frame is a decoded server frame: MessagePack values as msgpack decodes
// them into any (integers of their wire width, bin as []byte); JSON values
// kept raw.
type frame map[string]any

func (f frame) str(key string) string {
	switch v := f[key].(type) {
	case string:
		return v
	case json.RawMessage:
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			return s
		}
		return string(v)
	}
	return ""
}

func (f frame) num(key string) uint64 {
	switch v := f[key].(type) {
	case int8, int16, int32, int64:
		return uint64(reflect.ValueOf(v).Int())
	case uint8, uint16, uint32, uint64:
		return reflect.ValueOf(v).Uint()
	case json.RawMessage:
		var n uint64
		_ = json.Unmarshal(v, &n)
		return n
	}
	return 0
}

// errorCode is an error reply's code, 0 for a success.
func (f frame) errorCode(enc codec.Encoding) codec.ErrorCode {
	e, ok := f["error"]
	if !ok {
		return 0
	}
	if enc == codec.JSON {
		var v struct{ Code codec.ErrorCode }
		_ = json.Unmarshal(e.(json.RawMessage), &v)
		return v.Code
	}
	return codec.ErrorCode(frame(e.(map[string]any)).num("code"))
}

// read reads and decodes one frame, checking its message type.
func read(t *testing.T, c *websocket.Conn, enc codec.Encoding) frame {
	t.Helper()
	typ, b, err := c.Read(testCtx(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return decodeFrame(t, enc, typ, b)
}

func decodeFrame(t *testing.T, enc codec.Encoding, typ websocket.MessageType, b []byte) frame {
	t.Helper()
	if enc == codec.JSON {
		if typ != websocket.MessageText {
			t.Fatalf("JSON frame of type %v", typ)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		f := frame{}
		for k, v := range raw {
			f[k] = v
		}
		return f
	}
	if typ != websocket.MessageBinary {
		t.Fatalf("msgpack frame of type %v", typ)
	}
	var m map[string]any
	if err := msgpack.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	return frame(m)
}

// waitFor polls cond until it holds or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closeStatus reads until the connection ends and returns its close code.
func closeStatus(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	for {
		if _, _, err := c.Read(testCtx(t)); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}
