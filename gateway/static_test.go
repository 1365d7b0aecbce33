package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// TestDemoPageServed: with Demo on, plain GETs of the demo paths get the
// embedded files and the connection is closed by the server; the
// WebSocket endpoint still upgrades; nothing counts as a failed handshake.
func TestDemoPageServed(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.Demo = true })
	addr := srv.Addr().String()
	for path, want := range map[string]struct{ ctype, contains string }{
		"/":                                   {"text/html; charset=utf-8", `<script type="module" src="/demo/app.js">`},
		"/?channel=chat:x":                    {"text/html; charset=utf-8", "wsgate demo chat"},
		"/demo/app.js":                        {"text/javascript; charset=utf-8", `from "./wsgate-client/index.js"`},
		"/demo/style.css":                     {"text/css; charset=utf-8", "#messages"},
		"/demo/wsgate-client/index.js":        {"text/javascript; charset=utf-8", "export { Client }"},
		"/demo/wsgate-client/client.js":       {"text/javascript; charset=utf-8", "class Client"},
		"/demo/wsgate-client/backoff.js":      {"text/javascript; charset=utf-8", "full jitter"},
		"/demo/wsgate-client/emitter.js":      {"text/javascript; charset=utf-8", "class Emitter"},
		"/demo/wsgate-client/codec.js":        {"text/javascript; charset=utf-8", "wsgate.v1.json"},
		"/demo/wsgate-client/policy.js":       {"text/javascript; charset=utf-8", "closeAction"},
		"/demo/wsgate-client/errors.js":       {"text/javascript; charset=utf-8", "WsgateError"},
		"/demo/wsgate-client/subscription.js": {"text/javascript; charset=utf-8", "class Subscription"},
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want.ctype || !strings.Contains(string(body), want.contains) {
			t.Fatalf("GET %s: %d %q, body contains %q: %v", path, resp.StatusCode, resp.Header.Get("Content-Type"), want.contains, strings.Contains(string(body), want.contains))
		}
		if !resp.Close || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("GET %s: headers %v", path, resp.Header)
		}
	}
	// HEAD: the headers only.
	c := rawRequest(t, addr, "HEAD /demo/app.js HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.HasPrefix(c, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(c, "\r\n\r\n") {
		t.Fatalf("HEAD: %q", c)
	}
	// Not demo paths: the usual answers.
	for req, status := range map[string]string{
		"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n":           "HTTP/1.1 404",
		"POST / HTTP/1.1\r\nHost: x\r\n\r\n":              "HTTP/1.1 4",
		"GET /demo/../go.mod HTTP/1.1\r\nHost: x\r\n\r\n": "HTTP/1.1 404",
	} {
		if got := rawRequest(t, addr, req); !strings.HasPrefix(got, status) {
			t.Fatalf("%q: got %q, want %s", req, got, status)
		}
	}
	// The WebSocket endpoint is untouched.
	ws, err := dialIdle(addr, "/ws")
	if err != nil {
		t.Fatalf("upgrade with the demo on: %v", err)
	}
	ws.Close()
	if n := srv.Metrics().HandshakesFailed.Load(); n != 3 {
		t.Fatalf("failed handshakes %d, want 3 (the three non-demo requests): demo pages are not failures", n)
	}
}

// TestDemoPageOff: without Demo, / is not served.
func TestDemoPageOff(t *testing.T) {
	srv := startServer(t, nil)
	if got := rawRequest(t, srv.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 404") {
		t.Fatalf("GET / without --demo: %q", got)
	}
}

// rawRequest writes req and returns everything the server sent until it
// closed the connection (the server must close: the test fails otherwise).
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("%q: reading until the server closes: %v (got %q)", req, err, b)
	}
	return string(b)
}
