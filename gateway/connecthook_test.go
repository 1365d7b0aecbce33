package gateway_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/auth"
)

// TestConnectHook: a handshake without a token is decided by the backend's
// connect hook, which sees the forwarded cookies: allow → 101, deny → its
// status, timeout → 503. A slow hook runs off the event loop: other
// clients are served meanwhile.
func TestConnectHook(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Headers map[string]string `json:"headers"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		switch cookie := req.Headers["Cookie"]; {
		case strings.Contains(cookie, "sid=good"):
			w.Write([]byte(`{"user":"42"}`))
		case strings.Contains(cookie, "sid=slow"):
			<-release
			w.Write([]byte(`{"user":"43"}`))
		default:
			http.Error(w, "no session", http.StatusForbidden)
		}
	}))
	defer hook.Close()
	defer close(release)
	srv := authServer(t, func(c *gateway.Config, a *auth.Config) {
		a.HookURL, a.HookTimeout = hook.URL, 3*time.Second
	})
	addr := srv.Addr().String()
	if got := handshakeStatus(t, addr, "/ws", "Cookie: sid=good"); got != 101 {
		t.Fatalf("allowed session: %d", got)
	}
	if got := handshakeStatus(t, addr, "/ws", "Cookie: sid=bad"); got != 403 {
		t.Fatalf("denied session: %d", got)
	}
	slowDone := make(chan int, 1)
	go func() { slowDone <- handshakeStatusNoT(addr, "Cookie: sid=slow") }()
	time.Sleep(100 * time.Millisecond) // the slow hook is in flight
	start := time.Now()
	nc, err := dialIdleWith(addr, "/ws", "Cookie: sid=good")
	if err != nil {
		t.Fatal(err)
	}
	other := &resumeClient{&wsConn{t: t, conn: nc, br: newBufReader(nc), rng: rand.New(rand.NewPCG(5, 6)), readTimeout: ioTimeout}, t}
	defer nc.Close()
	other.cmd(map[string]any{"id": 1, "cmd": "ping"})
	if m := other.frameMap(); m["error"] != nil {
		t.Fatalf("ping: %v", m)
	}
	// Queued behind the pending hook, it would wait for its 3 s timeout.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("another client took %v while a hook was pending", d)
	}
	if got := <-slowDone; got != 503 {
		t.Fatalf("hook timeout: %d, want 503", got)
	}
}

// TestConnectHookNeverSeesTokens pins what README.md and auth/doc.go say
// reaches the connect hook: a handshake that carries a token (a Bearer
// Authorization header, ?token= or the token cookie) is verified as a JWT
// and refused when it is not one (here no JWT key is configured at all),
// without calling the hook; any other Authorization scheme and the other
// cookies are forwarded to it.
func TestConnectHookNeverSeesTokens(t *testing.T) {
	var mu sync.Mutex
	var seen []string // the Authorization and Cookie headers of each hook call
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Headers map[string]string `json:"headers"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		seen = append(seen, req.Headers["Authorization"]+"|"+req.Headers["Cookie"])
		mu.Unlock()
		w.Write([]byte(`{"user":"42"}`))
	}))
	defer hook.Close()
	srv := authServer(t, func(c *gateway.Config, a *auth.Config) {
		a.HMACSecret, a.HookURL = nil, hook.URL // hook only; the token cookie stays "wsgate_token"
	})
	addr := srv.Addr().String()
	for _, tc := range []struct {
		path, header string
		status       int
		hookSaw      string // "": the hook was not called
	}{
		{"/ws", "Authorization: Bearer opaque-session", 401, ""},
		{"/ws?token=opaque-session", "X-Other: 1", 401, ""},
		{"/ws", "Cookie: wsgate_token=opaque-session; sid=s1", 401, ""},
		{"/ws", "Authorization: Basic dXNlcjpwYXNz", 101, "Basic dXNlcjpwYXNz|"},
		{"/ws", "Cookie: sid=s1", 101, "|sid=s1"},
	} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		got := handshakeStatus(t, addr, tc.path, tc.header)
		mu.Lock()
		calls := slices.Clone(seen)
		mu.Unlock()
		want := []string(nil)
		if tc.hookSaw != "" {
			want = []string{tc.hookSaw}
		}
		if got != tc.status || !slices.Equal(calls, want) {
			t.Errorf("%s with %q: status %d, hook saw %q; want %d and %q", tc.path, tc.header, got, calls, tc.status, want)
		}
	}
}
