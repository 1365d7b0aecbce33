package auth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// hookServer runs handler behind httptest and records the last request.
type hookServer struct {
	*httptest.Server
	last atomic.Pointer[hookRequest]
}

func newHookServer(t *testing.T, handler http.HandlerFunc) *hookServer {
	t.Helper()
	hs := &hookServer{}
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		var req hookRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		hs.last.Store(&req)
		handler(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// browserHeader is what an upgrade from a logged-in browser carries.
func browserHeader() http.Header {
	return http.Header{
		"Cookie":          {"sid=abc123", "theme=dark"},
		"Origin":          {"https://app.test"},
		"User-Agent":      {"test-browser/1.0"},
		"X-Forwarded-For": {"203.0.113.7"},
		"X-Internal-Hop":  {"secret-value"}, // not on the allow-list
	}
}

func TestHookAllow(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	hs := newHookServer(t, reply(200, `{"user":"42","channels":["a","b"],"expires_at":`+itoa(exp)+`,"extra":true}`))
	a := newAuth(t, Config{HookURL: hs.URL + "/auth/connect"})
	if !a.HookEnabled() {
		t.Fatal("HookEnabled false")
	}
	id, err := a.CallHook(context.Background(), "/ws?room=1", browserHeader())
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "42" || id.Anonymous || !slices.Equal(id.Channels, []string{"a", "b"}) || id.ExpiresAt.Unix() != exp {
		t.Fatalf("identity %+v", id)
	}
	got := hs.last.Load()
	if got.URI != "/ws?room=1" {
		t.Errorf("uri %q", got.URI)
	}
	want := map[string]string{
		"Cookie":          "sid=abc123; theme=dark",
		"Origin":          "https://app.test",
		"User-Agent":      "test-browser/1.0",
		"X-Forwarded-For": "203.0.113.7",
	}
	if len(got.Headers) != len(want) {
		t.Errorf("forwarded headers %v, want %v", got.Headers, want)
	}
	for k, v := range want {
		if got.Headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, got.Headers[k], v)
		}
	}
}

func TestHookForwardsAuthorization(t *testing.T) {
	hs := newHookServer(t, reply(200, `{"user":"7"}`))
	a := newAuth(t, Config{HookURL: hs.URL})
	id, err := a.CallHook(context.Background(), "/ws", http.Header{"Authorization": {"Bearer opaque"}})
	if err != nil || id.UserID != "7" || id.Channels != nil || !id.ExpiresAt.IsZero() {
		t.Fatalf("id %+v err %v", id, err)
	}
	if h := hs.last.Load().Headers["Authorization"]; h != "Bearer opaque" {
		t.Fatalf("Authorization %q", h)
	}
}

func TestHookStatuses(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		anon    bool
		status  int
		code    string
	}{
		{"deny 403", reply(403, `{"error":"banned"}`), false, 403, CodeHookForbidden},
		{"deny 401", reply(401, ``), false, 401, CodeHookUnauthorized},
		{"500", reply(500, `oops`), false, 503, CodeBackendUnavailable},
		{"502", reply(502, ``), false, 503, CodeBackendUnavailable},
		{"404 misconfigured path", reply(404, ``), false, 503, CodeBackendUnavailable},
		{"bad JSON", reply(200, `{"user":`), false, 503, CodeBackendUnavailable},
		{"trailing garbage", reply(200, `{"user":"1"} x`), false, 503, CodeBackendUnavailable},
		{"user not a string", reply(200, `{"user":42}`), false, 503, CodeBackendUnavailable},
		{"no user", reply(200, `{"channels":["a"]}`), false, 503, CodeBackendUnavailable},
		{"empty user, anonymous off", reply(200, `{"user":""}`), false, 401, CodeHookUnauthorized},
		{"session already expired", reply(200, `{"user":"1","expires_at":1}`), false, 401, CodeTokenExpired},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, false, 503, CodeBackendUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			hs := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				tc.handler(w, r)
			})
			a := newAuth(t, Config{HookURL: hs.URL, AllowAnonymous: tc.anon})
			_, err := a.CallHook(context.Background(), "/ws", browserHeader())
			wantErr(t, err, tc.status, tc.code)
			if n := hits.Load(); n != 1 {
				t.Fatalf("hook hit %d times, want 1", n)
			}
		})
	}
}

func TestHookAnonymous(t *testing.T) {
	hs := newHookServer(t, reply(200, `{"user":""}`))
	a := newAuth(t, Config{HookURL: hs.URL, AllowAnonymous: true})
	id, err := a.CallHook(context.Background(), "/ws", nil)
	if err != nil || !id.Anonymous || id.UserID != "" {
		t.Fatalf("id %+v err %v", id, err)
	}
}

// blocker holds the request until the client gives up (or a safety net).
func blocker(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
	reply(200, `{"user":"late"}`)(w, r)
}

func TestHookTimeout(t *testing.T) {
	hs := newHookServer(t, blocker)
	a := newAuth(t, Config{HookURL: hs.URL, HookTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := a.CallHook(context.Background(), "/ws", browserHeader())
	wantErr(t, err, 503, CodeBackendUnavailable)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	if !errorsIsDeadline(err) {
		t.Fatalf("error %v does not wrap the deadline", err)
	}
}

func TestHookHonoursContext(t *testing.T) {
	hs := newHookServer(t, blocker)
	a := newAuth(t, Config{HookURL: hs.URL, HookTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := a.CallHook(ctx, "/ws", nil)
	wantErr(t, err, 503, CodeBackendUnavailable)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

func TestHookUnreachable(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close() // nothing listens there any more
	a := newAuth(t, Config{HookURL: url})
	_, err := a.CallHook(context.Background(), "/ws", nil)
	wantErr(t, err, 503, CodeBackendUnavailable)
}

func TestHookNotConfigured(t *testing.T) {
	a := newAuth(t, Config{AllowAnonymous: true})
	if a.HookEnabled() {
		t.Fatal("HookEnabled true")
	}
	_, err := a.CallHook(context.Background(), "/ws", nil)
	wantErr(t, err, 503, CodeBackendUnavailable)
}
