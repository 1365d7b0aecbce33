package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/api"
)

// startAPIServer serves the API with key "k" on b (nil when the test
// never gets past reading the request), with timeouts, on a fresh port.
func startAPIServer(t *testing.T, b api.Backend, timeouts httpTimeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := apiServer(api.New("k", b, nil), timeouts)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

// waitClosed reads from c until the server closes it and returns how long
// that took; it fails the test if c is still open after within.
func waitClosed(t *testing.T, r io.Reader, c net.Conn, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(within))
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", within)
	}
	return time.Since(start)
}

// TestAPIServerClosesIdleConnections: a keep-alive connection that sent
// one request (here answered 401) and then nothing is closed by the
// server after its idle timeout, not held open for good.
func TestAPIServerClosesIdleConnections(t *testing.T) {
	const idle = 300 * time.Millisecond
	addr := startAPIServer(t, nil, httpTimeouts{header: time.Second, read: 2 * time.Second, idle: idle})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /api/info HTTP/1.1\r\nHost: api\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Close {
		t.Fatalf("got %d (close %v), want a 401 that keeps the connection", resp.StatusCode, resp.Close)
	}
	if took := waitClosed(t, br, c, 10*idle); took < idle/2 {
		t.Fatalf("closed after %v, before the idle timeout %v", took, idle)
	}
}

// TestAPIServerBoundsBodyRead: a request whose body stalls is answered
// 408 when the read timeout runs out, and its connection closed, instead
// of holding a goroutine for as long as the peer likes.
func TestAPIServerBoundsBodyRead(t *testing.T) {
	const read = 300 * time.Millisecond
	addr := startAPIServer(t, nil, httpTimeouts{header: read, read: read, idle: time.Minute})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 2 bytes of a 10-byte body, then nothing.
	if _, err := io.WriteString(c, "POST /api/info HTTP/1.1\r\nHost: api\r\nAuthorization: apikey k\r\nContent-Length: 10\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * read))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "body not received in time") {
		t.Fatalf("got %d %s, want 408", resp.StatusCode, body)
	}
	waitClosed(t, br, c, 10*read)
}

// slowInfo is a Backend whose Info takes d, failing if its context ends
// first; the tests call nothing else.
type slowInfo struct {
	api.Backend
	d time.Duration
}

func (b slowInfo) Info(ctx context.Context) (map[string]any, error) {
	select {
	case <-time.After(b.d):
		return map[string]any{"ok": true}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestAPIServerReadTimeoutEndsWithTheBody: the read timeout bounds the
// upload only. A request whose body took most of it, and whose Backend
// call then runs past it, is not cut short: net/http clears the read
// deadline once the body is read, so the call keeps its own 10 s bound.
func TestAPIServerReadTimeoutEndsWithTheBody(t *testing.T) {
	const read = 400 * time.Millisecond
	addr := startAPIServer(t, slowInfo{d: read}, httpTimeouts{header: read, read: read, idle: time.Minute})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /api/info HTTP/1.1\r\nHost: api\r\nAuthorization: apikey k\r\nContent-Length: 2\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(read / 2)
	if _, err := io.WriteString(c, "}"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * read))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %s, want 200: the Backend call was cut short by the read timeout", resp.StatusCode, body)
	}
}
