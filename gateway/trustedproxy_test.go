package gateway_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/auth"
	"github.com/wsgate/wsgate/internal/testutil"
)

// upgradeFrom dials addr from the loopback address local, sends an
// upgrade request for /echo with extra header lines and returns the
// response head and the connection (open only after a 101; the caller
// closes it).
func upgradeFrom(t *testing.T, local, addr string, extra ...string) (string, net.Conn) {
	t.Helper()
	return upgradePathFrom(t, local, addr, "/echo", extra...)
}

// upgradePathFrom is upgradeFrom for path.
func upgradePathFrom(t *testing.T, local, addr, path string, extra ...string) (string, net.Conn) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	head, err := requestUpgrade(c, addr, path, extra...)
	if err != nil {
		c.Close()
		t.Fatalf("upgrade from %s: %v", local, err)
	}
	return head, c
}

// status is the code of a response head.
func status(head string) int {
	var code int
	fmt.Sscanf(head, "HTTP/1.1 %d", &code)
	return code
}

// TestTrustedProxyPerIP: behind a trusted proxy the per-IP limit counts the
// client X-Forwarded-For names, not the proxy: with --max-conns-per-ip 1,
// two clients through one proxy are both upgraded, a second connection of
// either gets the 429 a direct one gets, and a closed one frees its
// client's slot. From any other peer the header is ignored.
func TestTrustedProxyPerIP(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) {
		c.MaxConnsPerIP = 1
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	addr := srv.Addr().String()
	var held []net.Conn
	defer func() { closeAll(held) }()
	expect := func(want int, local string, extra ...string) net.Conn {
		t.Helper()
		head, c := upgradeFrom(t, local, addr, extra...)
		if status(head) != want {
			c.Close()
			t.Fatalf("from %s with %q: %q, want %d", local, extra, head, want)
		}
		if want != 101 {
			c.Close()
			return nil
		}
		held = append(held, c)
		return c
	}

	first := expect(101, "127.0.0.1", "X-Forwarded-For: 203.0.113.1")
	expect(101, "127.0.0.1", "X-Forwarded-For: 203.0.113.2")
	// The same client again, through a chain: the rightmost untrusted
	// entry is what counts, whatever it wrote on the left.
	head, c := upgradeFrom(t, "127.0.0.1", addr, "X-Forwarded-For: 198.51.100.9, 203.0.113.1, 127.0.0.1")
	c.Close()
	if want := "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"; !strings.HasPrefix(head, want) {
		t.Fatalf("third connection, client 203.0.113.1 again: %q, want the per-IP answer %q…", head, want)
	}
	// HAProxy's "option forwardfor" adds a line of its own.
	expect(429, "127.0.0.1", "X-Forwarded-For: 198.51.100.9", "X-Forwarded-For: 203.0.113.2")
	if got := srv.Metrics().ConnsRefused.Load(); got != 2 {
		t.Fatalf("wsgate_conns_refused_total %d, want 2", got)
	}

	// Closing the first frees 203.0.113.1 (and only it).
	first.Close()
	waitUntil(t, 5*time.Second, func() bool {
		head, c := upgradeFrom(t, "127.0.0.1", addr, "X-Forwarded-For: 203.0.113.1")
		if status(head) == 101 {
			held = append(held, c)
			return true
		}
		c.Close()
		return false
	})
	expect(429, "127.0.0.1", "X-Forwarded-For: 203.0.113.2")

	// No header, or a malformed one: the proxy is the client (counted
	// once, as any other address).
	expect(101, "127.0.0.1")
	expect(429, "127.0.0.1", "X-Forwarded-For: not-an-address")
	if got := srv.Metrics().ForwardedIgnored.Load(); got != 1 {
		t.Fatalf("wsgate_forwarded_for_ignored_total %d, want 1", got)
	}
}

// TestUntrustedPeerForwardedIgnored: from a peer that is not a trusted
// proxy X-Forwarded-For is ignored: the peer is counted as itself, at
// accept, whatever it claims.
func TestUntrustedPeerForwardedIgnored(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) {
		c.MaxConnsPerIP = 1
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	addr := srv.Addr().String()
	head, c := upgradeFrom(t, "127.0.0.2", addr, "X-Forwarded-For: 203.0.113.3")
	defer c.Close()
	if status(head) != 101 {
		t.Fatalf("first from 127.0.0.2: %q", head)
	}
	head, c2 := upgradeFrom(t, "127.0.0.2", addr, "X-Forwarded-For: 203.0.113.4")
	c2.Close()
	if status(head) != 429 {
		t.Fatalf("second from 127.0.0.2, claiming another client: %q, want 429", head)
	}
	if got := srv.Metrics().ForwardedIgnored.Load(); got != 0 {
		t.Fatalf("wsgate_forwarded_for_ignored_total %d: an untrusted peer's header is not even read", got)
	}
}

// TestTrustedProxyLogs: the debug lines of a connection from a trusted
// proxy name the client X-Forwarded-For named as peer, and the proxy as
// proxy; an ignored header is a debug line of its own and a summary count.
func TestTrustedProxyLogs(t *testing.T) {
	var logs testutil.SyncBuffer
	s, _ := startServerLog(t, slog.LevelDebug, &logs, func(c *gateway.Config) {
		c.LogSummaryInterval = 200 * time.Millisecond
		c.TrustedProxies = []string{"127.0.0.0/8"}
		c.AllowedOrigins = []string{"https://app.test"}
	})
	addr := s.Addr().String()
	statusOutcome(addr, []byte(edgeRequest("Origin: https://evil.test", "X-Forwarded-For: 203.0.113.5")))
	c := dialWSWith(t, addr, "/echo", "X-Forwarded-For: 2001:db8::7, 127.0.0.1")
	c.send(binFrame(bytes.Repeat([]byte("m"), 70_000)))
	if out := closeOutcome(c); out != "close 1009" {
		t.Fatalf("oversized message: %s", out)
	}
	// Ignored: the line is about the proxy, as if it had sent no header.
	if got := statusOutcome(addr, []byte(edgeRequest("Origin: https://evil.test", "X-Forwarded-For: 203.0.113.5, garbage"))); got != "HTTP 403" {
		t.Fatalf("malformed X-Forwarded-For, refused origin: %s", got)
	}
	waitUntil(t, 10*time.Second, func() bool {
		return summedCounts(logs.String(), "X-Forwarded-For ignored")["malformed"] == 1
	})
	for _, want := range []string{
		`level=DEBUG msg="handshake refused" status=403 reason=origin peer=203.0.113.5 proxy=127.0.0.1:`,
		`level=DEBUG msg="connection closed by the server" code=1009 peer=2001:db8::7 proxy=127.0.0.1:`,
		`level=DEBUG msg="X-Forwarded-For ignored" reason=malformed proxy=127.0.0.1:`,
		`level=DEBUG msg="handshake refused" status=403 reason=origin peer=127.0.0.1:`,
		`level=INFO msg="X-Forwarded-For ignored" period=200ms total=1 malformed=1`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestTrustedProxyConnectHook: with a connect hook (which runs off the
// event loop, then the upgrade resumes) the client is counted once,
// before the hook is asked: a client over its limit costs the backend
// nothing, and one under it is not refused by its own count when the
// upgrade resumes.
func TestTrustedProxyConnectHook(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte(`{"user":"42"}`))
	}))
	defer hook.Close()
	srv := authServer(t, func(c *gateway.Config, a *auth.Config) {
		a.HookURL, a.HookTimeout = hook.URL, 3*time.Second
		c.MaxConnsPerIP = 1
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	addr := srv.Addr().String()
	for i, tc := range []struct {
		xff   string
		want  int
		calls int32
	}{
		{"203.0.113.1", 101, 1},
		{"203.0.113.1", 429, 1},
		{"203.0.113.2", 101, 2},
	} {
		head, c := upgradePathFrom(t, "127.0.0.1", addr, "/ws", "Cookie: sid=x", "X-Forwarded-For: "+tc.xff)
		defer c.Close()
		if status(head) != tc.want || calls.Load() != tc.calls {
			t.Fatalf("connection %d, client %s: %q after %d hook calls; want %d after %d", i+1, tc.xff, head, calls.Load(), tc.want, tc.calls)
		}
	}
}
