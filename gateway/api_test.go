package gateway_test

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/api"
	"github.com/wsgate/wsgate/gateway/auth"
)

// TestServerAPI drives the HTTP API against a real gateway: publish
// reaches WebSocket subscribers (an idempotent one exactly once), history
// and info answer, disconnect closes a user's connections, and bad keys
// and bodies are refused.
func TestServerAPI(t *testing.T) {
	srv := authServer(t, func(_ *gateway.Config, a *auth.Config) { a.AllowAnonymous = true })
	hs := httptest.NewServer(api.New("k3y", srv.APIBackend(), slog.New(slog.DiscardHandler)))
	defer hs.Close()
	call := func(key, method, body string) (int, string) {
		r := apiPostKey(t, hs.URL, key, method, body)
		return r.status, r.body
	}
	sub := dialAs(t, srv.Addr().String(), token(t, "42", time.Minute, nil))
	sub.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "news"})
	sub.frameMap()

	if code, body := call("k3y", "publish", `{"channel":"news","data":{"n":1}}`); code != 200 || !strings.Contains(body, `"offset":1`) {
		t.Fatalf("publish: %d %s", code, body)
	}
	for range 2 {
		if code, body := call("k3y", "publish", `{"channel":"news","data":{"n":2},"idempotency_key":"once"}`); code != 200 {
			t.Fatalf("idempotent publish: %d %s", code, body)
		}
	}
	for want := 1; want <= 2; want++ {
		if m := sub.frameMap(); toU(m["offset"]) != uint64(want) {
			t.Fatalf("message %v, want offset %d", m, want)
		}
	}
	sub.expectNothing(200 * time.Millisecond) // the repeated key was not published again
	if code, body := call("k3y", "history", `{"channel":"news"}`); code != 200 || !strings.Contains(body, `"offset":2`) {
		t.Fatalf("history: %d %s", code, body)
	}
	if code, body := call("k3y", "info", `{}`); code != 200 || !strings.Contains(body, `"connections":1`) {
		t.Fatalf("info: %d %s", code, body)
	}
	if code, _ := call("wrong", "publish", `{"channel":"news","data":1}`); code != 401 {
		t.Fatalf("bad key: %d", code)
	}
	if code, body := call("k3y", "publish", `{"channel":`); code != 400 || !strings.Contains(body, "error") {
		t.Fatalf("malformed body: %d %s", code, body)
	}
	if code, body := call("k3y", "disconnect", `{"user":"42","code":4321,"reason":"bye"}`); code != 200 || !strings.Contains(body, `"disconnected":1`) {
		t.Fatalf("disconnect: %d %s", code, body)
	}
	sub.expectClose(4321)
}
