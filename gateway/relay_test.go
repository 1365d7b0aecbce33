package gateway_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/api"
	"github.com/wsgate/wsgate/gateway/auth"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/memory"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// withAuth gives a gateway HS256 connection tokens (testSecret).
func withAuth(t *testing.T) func(*gateway.Config) {
	return func(c *gateway.Config) {
		a, err := auth.New(auth.Config{HMACSecret: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = a
	}
}

// repeatUntil calls call now and every 250 ms until done is closed: a
// relayed command reaches another instance only once that instance's
// subscription to the command channel is up, which a test cannot see.
// Repeating the command is harmless, as it is for a backend retrying one.
func repeatUntil(done <-chan struct{}, call func()) {
	go func() {
		for {
			call()
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
}

// expectCloseWith reads the close frame a server sends and checks its
// code and reason.
func expectCloseWith(t *testing.T, c *resumeClient, code uint16, reason string) {
	t.Helper()
	ev, err := c.next()
	if err != nil {
		t.Fatalf("want close %d %q: %v", code, reason, err)
	}
	gotCode, gotReason := parseClose(ev.payload)
	if ev.op != opClose || gotCode != code || string(gotReason) != reason {
		t.Fatalf("got %v (close %d %q), want close %d %q", ev, gotCode, gotReason, code, reason)
	}
}

// TestAPICommandsReachEveryInstance: the server API's unsubscribe and
// disconnect, called on one instance, act on the user's connections on the
// other instance too (through Redis), even when both were given the same
// node id; the count is of the calling instance's connections. A
// disconnect with a reason but no code closes with 4000 and that reason.
func TestAPICommandsReachEveryInstance(t *testing.T) {
	rs := redistest.StartStandalone(t)
	// One node id pinned on both (a deployment's mistake, but a common
	// one): each must still run the other's commands.
	sameNode := func(c *gateway.Config) { withAuth(t)(c); c.NodeID = "gw" }
	a := startRedisGateway(t, rs.URL(), sameNode)
	b := startRedisGateway(t, rs.URL(), sameNode)
	tok := token(t, "42", time.Hour, nil)
	onA, onB := dialAs(t, a.Addr().String(), tok), dialAs(t, b.Addr().String(), tok)
	other := dialAs(t, b.Addr().String(), token(t, "43", time.Hour, nil))
	for _, c := range []*resumeClient{onA, onB, other} {
		subscribeOK(t, c, 1, "news")
	}
	ctx := context.Background()

	var counts atomic.Int64 // the calls' counts, summed
	var calls atomic.Int64
	done := make(chan struct{})
	repeatUntil(done, func() {
		n, err := a.APIBackend().Unsubscribe(ctx, "42", "", "news")
		if err != nil {
			t.Errorf("unsubscribe: %v", err)
		}
		counts.Add(int64(n))
		calls.Add(1)
	})
	for name, c := range map[string]*resumeClient{"on the calling instance": onA, "on the other instance": onB} {
		if m := c.frameMap(); m["type"] != "unsubscribe" || m["channel"] != "news" {
			t.Fatalf("user 42 %s: %v, want the unsubscribe push", name, m)
		}
	}
	close(done)
	time.Sleep(300 * time.Millisecond) // the last call has returned
	if n, k := counts.Load(), calls.Load(); n != k {
		t.Errorf("%d calls counted %d connections, want 1 each (the calling instance's)", k, n)
	}
	other.expectNothing(200 * time.Millisecond)

	done = make(chan struct{})
	repeatUntil(done, func() {
		if _, err := a.APIBackend().Disconnect(ctx, "42", "", 0, "account suspended"); err != nil {
			t.Errorf("disconnect: %v", err)
		}
	})
	expectCloseWith(t, onA, 4000, "account suspended")
	expectCloseWith(t, onB, 4000, "account suspended")
	close(done)
	other.cmd(map[string]any{"id": 2, "cmd": "publish", "channel": "elsewhere", "data": "still here"})
	if m := other.frameMap(); toU(m["id"]) != 2 || m["error"] != nil {
		t.Fatalf("user 43's connection after user 42's disconnect: %v, want its publish answered", m)
	}
	if n := b.Metrics().CommandsRelayed.Load(); n < 2 {
		t.Errorf("instance b ran %d relayed commands, want at least 2", n)
	}
	if n := a.Metrics().CommandsRelayed.Load(); n != 0 {
		t.Errorf("instance a ran %d relayed commands, want 0 (its own are not run twice)", n)
	}
}

// failingCommands is a broker that cannot publish the gateway's internal
// channels ('$…', outside the client grammar): the other instances cannot
// be told.
type failingCommands struct{ broker.Broker }

func (b failingCommands) Publish(ch string, data []byte, opts broker.PublishOptions, done func(broker.PublishResult, error)) {
	if strings.HasPrefix(ch, "$") {
		done(broker.PublishResult{}, broker.Unavailable(errors.New("down")))
		return
	}
	b.Broker.Publish(ch, data, opts, done)
}

// TestAPICommandNotRelayed: a disconnect the other instances could not be
// told of still closes this instance's connections, and answers
// unavailable (the HTTP API's 503: retry) saying so.
func TestAPICommandNotRelayed(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) {
		withAuth(t)(c)
		c.Broker = failingCommands{memory.New("n1")}
	})
	sub := dialAs(t, srv.Addr().String(), token(t, "42", time.Hour, nil))
	subscribeOK(t, sub, 1, "news") // the connection is open and indexed
	n, err := srv.APIBackend().Disconnect(context.Background(), "42", "", 4503, "banned")
	if n != 1 || !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "may not have been told") {
		t.Fatalf("disconnect: %d, %v; want 1 and unavailable, the others not told", n, err)
	}
	expectCloseWith(t, sub, 4503, "banned")
	if got := srv.Metrics().CommandsNotRelayed.Load(); got != 1 {
		t.Errorf("wsgate_api_commands_not_relayed_total %d, want 1", got)
	}
}
