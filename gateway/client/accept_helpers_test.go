package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/gateway/client"
	"github.com/wsgate/wsgate/internal/testutil"
)

// The acceptance tests run the real wsgate binary, built once per test run
// without the race detector, in processes of their own: the gateway can
// then be SIGKILLed and SIGTERMed and restarted like in production.

var builds testutil.Builds

// TestMain removes the built binaries and, after a passing run, checks
// that no test left a goroutine behind (the unit tests check each on its
// own; this covers the acceptance tests' thousands of clients too).
func TestMain(m *testing.M) {
	code := m.Run()
	builds.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// httpc is the tests' HTTP client: no keep-alive, so no idle connection
// (and its goroutines) outlives a request.
var httpc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func wsgateBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the wsgate binary")
	}
	bin, err := builds.Build("wsgate")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// gw is a wsgate process at a fixed address, which survives restarts.
type gw struct {
	t    *testing.T
	bin  string
	args []string
	addr string
	p    *server.Process
}

func startGW(t *testing.T, args ...string) *gw {
	t.Helper()
	addr, err := server.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	g := &gw{t: t, bin: wsgateBin(t), args: args, addr: addr}
	g.start()
	t.Cleanup(func() {
		if g.p != nil {
			g.p.Kill()
			if t.Failed() {
				t.Logf("wsgate %s output:\n%s", g.addr, g.p.Logs())
			}
		}
	})
	return g
}

func (g *gw) start() {
	g.t.Helper()
	p, err := server.Start(context.Background(), server.Spec{Name: "wsgate", Bin: g.bin,
		Args: append([]string{"serve"}, g.args...), Debug: true, Listen: g.addr})
	if err != nil {
		g.t.Fatal(err)
	}
	g.p = p
}

func (g *gw) url() string { return "ws://" + g.addr + "/ws" }

// kill ends the gateway with SIGKILL: no close frame, no drain.
func (g *gw) kill() {
	g.p.Kill()
	g.p = nil
}

// term ends it with SIGTERM: every connection gets 1001 over the drain
// window, then the process exits.
func (g *gw) term() {
	if err := g.p.Stop(); err != nil {
		g.t.Fatalf("wsgate did not drain cleanly: %v", err)
	}
	g.p = nil
}

// metric reads a counter or gauge from the gateway's /metrics.
func (g *gw) metric(name string) int64 {
	g.t.Helper()
	resp, err := httpc.Get("http://" + g.p.DebugAddr + "/metrics")
	if err != nil {
		g.t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				g.t.Fatalf("metric %s: %q", name, v)
			}
			return n
		}
	}
	g.t.Fatalf("metric %s not found", name)
	return 0
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tally records what one subscriber's handler and state callback saw.
type tally struct {
	mu        sync.Mutex
	pubs      []client.Publication
	subs      []client.Subscribed // every Subscribed event
	subsAt    []time.Time
	notices   []client.Event // Gap, EpochChanged, Unsubscribed
	states    []client.State
	connected int
}

func (ta *tally) handle(ev client.Event) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	switch e := ev.(type) {
	case client.Publication:
		ta.pubs = append(ta.pubs, e)
	case client.Subscribed:
		ta.subs = append(ta.subs, e)
		ta.subsAt = append(ta.subsAt, time.Now())
	default:
		ta.notices = append(ta.notices, e)
	}
}

func (ta *tally) state(s client.State) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.states = append(ta.states, s)
	if s.Kind == client.StateConnected {
		ta.connected++
	}
}

func (ta *tally) count() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return len(ta.pubs)
}

// firstReconnect returns when the client first lost its connection, the
// backoff delay it drew then, and when its first attempt to come back
// started (zero: not yet).
func (ta *tally) firstReconnect() (lost time.Time, delay time.Duration, attempt time.Time) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	for _, s := range ta.states {
		switch {
		case s.Kind == client.StateDisconnected && lost.IsZero():
			lost, delay = s.At, s.Delay
		case s.Kind == client.StateConnecting && !lost.IsZero():
			return lost, delay, s.At
		}
	}
	return lost, delay, time.Time{}
}

// resumedAfter returns when the first resubscription after t came (zero:
// none yet) and what it said.
func (ta *tally) resumedAfter(t time.Time) (time.Time, client.Subscribed) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.resumedAfterLocked(t)
}

func (ta *tally) resumedAfterLocked(t time.Time) (time.Time, client.Subscribed) {
	for i, s := range ta.subs {
		if s.Resumed && ta.subsAt[i].After(t) {
			return ta.subsAt[i], s
		}
	}
	return time.Time{}, client.Subscribed{}
}

// publisher publishes "<i>" for i = 1, 2, … (continuing across runs) on
// one channel, one at a time, each with an idempotency key, and remembers
// what was acknowledged.
type publisher struct {
	c       *client.Client
	channel string
	halt    atomic.Bool // ends run after the publication under way
	mu      sync.Mutex
	acked   []client.Publication
	ackedAt []time.Time
	errs    []error
}

func (p *publisher) run(ctx context.Context, n int, every time.Duration) {
	p.mu.Lock()
	first := len(p.acked) + len(p.errs) + 1
	p.mu.Unlock()
	p.halt.Store(false)
	for i := first; i < first+n && ctx.Err() == nil && !p.halt.Load(); i++ {
		data := []byte(fmt.Sprint(i))
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := p.c.Publish(pctx, p.channel, data, client.WithIdempotencyKey(client.NewIdempotencyKey()))
		cancel()
		p.mu.Lock()
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("publish %d: %w", i, err))
		} else {
			p.acked = append(p.acked, client.Publication{Channel: p.channel, Offset: res.Offset, Epoch: res.Epoch, Data: data})
			p.ackedAt = append(p.ackedAt, time.Now())
		}
		p.mu.Unlock()
		time.Sleep(every)
	}
}

func jwtFor(t *testing.T, secret, user string, exp time.Time) string {
	t.Helper()
	// exp is whole seconds: rounded up, so the token is valid until exp.
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "exp": exp.Add(time.Second - 1).Unix()}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apiCall posts a server API request and returns the response body.
func apiCall(t *testing.T, addr, key, method, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/"+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "apikey "+key)
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("api %s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("api %s: %d %s (%v)", method, resp.StatusCode, b, err)
	}
	return string(b)
}

// percentile returns the p-th percentile (0–100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// ackedBetween counts the publications acknowledged in [from, to).
func (p *publisher) ackedBetween(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.ackedAt {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}
