package naive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/codec"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil || cfg != DefaultConfig() {
		t.Fatalf("zero config: %+v, %v", cfg, err)
	}
	if _, err := New(Config{PingInterval: time.Second, PongWait: time.Second}, nil); err == nil {
		t.Fatal("PongWait <= PingInterval accepted")
	}
}

// TestEcho: every message comes back with its type; a pipelined burst comes
// back complete and in order.
func TestEcho(t *testing.T) {
	ts := startServer(t, Config{})
	c := dial(t, ts, "/echo")
	ctx := testCtx(t)
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{{websocket.MessageText, []byte("hello")}, {websocket.MessageBinary, []byte{0, 1, 2}}} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("echo of %v %q: %v %q %v", m.typ, m.data, typ, got, err)
		}
	}

	const n = 2000 // well past the send buffer: the echo pushes back, it does not drop
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.Write(ctx, websocket.MessageBinary, fmt.Appendf(nil, "m%d", i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != fmt.Sprintf("m%d", i) {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestSlowClientDropped: a subscriber that never reads is closed once its
// send channel fills, while the publisher and a reading subscriber go on
// without a stall and miss nothing.
func TestSlowClientDropped(t *testing.T) {
	ts := startServer(t, Config{SendBuffer: 16, WriteWait: 300 * time.Millisecond})
	slow := dialWith(t, ts, "/ws", smallWindowClient())
	fast := dial(t, ts, "/ws")
	pub := dial(t, ts, "/ws")
	for _, c := range []*websocket.Conn{slow, fast} {
		send(t, c, codec.Msgpack, subscribeCmd(1, room))
		expectReply(t, c, codec.Msgpack, 1)
	}

	got := make(chan uint64, 10000)
	go func() {
		defer close(got)
		for {
			typ, b, err := fast.Read(t.Context())
			if err != nil {
				return
			}
			got <- decodeFrame(t, codec.Msgpack, typ, b).num("offset")
		}
	}()

	data := bytes.Repeat([]byte("x"), 16<<10)
	var published uint64
	var worst time.Duration
	for ts.metrics.SlowConsumers.Load() == 0 {
		if published == 5000 {
			t.Fatal("slow client never dropped")
		}
		published++
		start := time.Now()
		send(t, pub, codec.Msgpack, publishCmd(uint32(published), room, data))
		expectReply(t, pub, codec.Msgpack, uint32(published))
		worst = max(worst, time.Since(start))
	}
	if worst > time.Second {
		t.Errorf("a publish took %v while the slow client backed up", worst)
	}
	// The slow client leaves the hub once its writer gives up (WriteWait).
	waitFor(t, 5*time.Second, "slow client to leave the hub", func() bool { return ts.hub.subscribers(room) == 1 })

	published++
	send(t, pub, codec.Msgpack, publishCmd(uint32(published), room, []byte("after")))
	expectReply(t, pub, codec.Msgpack, uint32(published))
	for want := uint64(1); want <= published; want++ {
		select {
		case off := <-got:
			if off != want {
				t.Fatalf("fast subscriber got offset %d, want %d", off, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("fast subscriber stalled at %d of %d", want, published)
		}
	}
	t.Logf("slow client dropped after %d publications of 16 KiB; slowest publish %v", published-1, worst)
}

// TestShutdownSends1001: every kind of connection gets 1001, Serve returns
// nil, and nothing is left running.
func TestShutdownSends1001(t *testing.T) {
	ts := startServer(t, Config{})
	ws := dial(t, ts, "/ws")
	send(t, ws, codec.Msgpack, subscribeCmd(1, room))
	expectReply(t, ws, codec.Msgpack, 1)
	conns := map[string]*websocket.Conn{"ws": ws, "json": dial(t, ts, "/ws", codec.SubprotocolJSON), "echo": dial(t, ts, "/echo")}
	waitFor(t, time.Second, "3 open connections", func() bool { return ts.metrics.ConnsOpen.Load() == 3 })

	// Clients keep reading, as real ones do, so they answer the close frame
	// and the server need not wait out its close grace.
	type result struct {
		name string
		code websocket.StatusCode
	}
	results := make(chan result, len(conns))
	for name, c := range conns {
		go func() {
			for {
				if _, _, err := c.Read(t.Context()); err != nil {
					results <- result{name, websocket.CloseStatus(err)}
					return
				}
			}
		}()
	}
	start := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	took := time.Since(start)
	for range conns {
		if r := <-results; r.code != websocket.StatusGoingAway {
			t.Errorf("%s: close %d, want 1001", r.name, r.code)
		}
	}
	if took >= closeGrace {
		t.Errorf("shutdown took %v: clients that answer the close should not be waited for", took)
	}
	if n := ts.metrics.ConnsOpen.Load(); n != 0 {
		t.Errorf("%d connections open after shutdown", n)
	}
	if n := ts.hub.subscribers(room); n != 0 {
		t.Errorf("%d subscribers after shutdown", n)
	}
	if _, _, err := websocket.Dial(testCtx(t), ts.url("/ws"), nil); err == nil {
		t.Error("dial succeeded after shutdown")
	}
	for _, c := range conns {
		_ = c.CloseNow()
	}
	goleak.VerifyNone(t)
}

// TestTwoGoroutinesPerConnection asserts the design being measured: each
// connection costs one reader and one writer goroutine, nothing else.
// gorilla's client starts no goroutines, so every one counted is the
// server's (plus the test's constant few).
func TestTwoGoroutinesPerConnection(t *testing.T) {
	ts := startServer(t, Config{})
	var conns []*gorilla.Conn
	// grow opens connections up to n (half /ws, half /echo) and returns the
	// settled goroutine count.
	grow := func(n int) int {
		for i := len(conns); i < n; i++ {
			path := "/ws"
			if i%2 == 1 {
				path = "/echo"
			}
			c, _, err := gorilla.DefaultDialer.Dial(ts.url(path), nil)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		waitFor(t, 5*time.Second, "connections open", func() bool { return ts.metrics.ConnsOpen.Load() == int64(n) })
		// The net/http goroutines of the upgrade requests end just after.
		// Settled: the same count over 10 samples 20 ms apart (one pair
		// could straddle a stall of the goroutines still ending).
		prev, same := -1, 0
		waitFor(t, 10*time.Second, "goroutines to settle", func() bool {
			g := runtime.NumGoroutine()
			if g == prev {
				same++
			} else {
				prev, same = g, 0
			}
			time.Sleep(20 * time.Millisecond)
			return same >= 10
		})
		return prev
	}
	g50, g100 := grow(50), grow(100)
	t.Logf("goroutines: %d at 50 connections, %d at 100", g50, g100)
	if g100-g50 != 100 {
		t.Errorf("50 more connections added %d goroutines, want 100", g100-g50)
	}
	if g100 < 190 || g100 > 260 {
		t.Errorf("%d goroutines for 100 connections, want 190..260", g100)
	}

	for _, c := range conns {
		_ = c.Close()
	}
	waitFor(t, 5*time.Second, "connections closed", func() bool { return ts.metrics.ConnsOpen.Load() == 0 })
	waitFor(t, 5*time.Second, "goroutines to go", func() bool { return runtime.NumGoroutine() <= g50-100 })
}

// TestPongTimeout: a client that never answers pings is dropped after
// PongWait without a close frame; one that does stays.
func TestPongTimeout(t *testing.T) {
	// PongWait is long enough that the live client's pongs are never late
	// on a loaded machine; the deaf one still times out in seconds.
	ts := startServer(t, Config{PingInterval: 200 * time.Millisecond, PongWait: 2 * time.Second})
	// gorilla answers pings only inside a read call: this one never reads.
	deaf, _, err := gorilla.DefaultDialer.Dial(ts.url("/ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	alive := dial(t, ts, "/ws")
	alive.CloseRead(t.Context()) // reads, hence answers pings

	waitFor(t, 10*time.Second, "pong timeout", func() bool { return ts.metrics.PongTimeouts.Load() == 1 })
	time.Sleep(time.Second)
	if n := ts.metrics.PongTimeouts.Load(); n != 1 {
		t.Errorf("pong timeouts: %d", n)
	}
	if n := ts.metrics.ConnsOpen.Load(); n != 1 {
		t.Errorf("open connections: %d, want the live one", n)
	}
}

// TestDebugListener: wsgate's metric names in Prometheus text, and pprof.
func TestDebugListener(t *testing.T) {
	ts := startServer(t, Config{})
	c := dial(t, ts, "/ws")
	send(t, c, codec.Msgpack, codec.Command{ID: 1, Cmd: codec.CmdPing})
	expectReply(t, c, codec.Msgpack, 1)

	base := "http://" + ts.DebugAddr().String()
	// A reply is counted after it was queued, and the writer goroutine may
	// have sent it (and the client read it) before that.
	var body string
	waitFor(t, 3*time.Second, "the reply counted", func() bool {
		body = httpGet(t, base+"/metrics")
		return strings.Contains(body, "wsgate_frames_out_total 1\n")
	})
	for _, want := range []string{
		"# TYPE wsgate_conns_open gauge\nwsgate_conns_open 1\n",
		"wsgate_conns_upgraded_total 1\n",
		"wsgate_messages_in_total 1\n",
		"wsgate_frames_out_total 1\n",
		"# TYPE go_goroutines gauge\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if body := httpGet(t, base+"/debug/pprof/"); !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index: %.200s", body)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // nothing left for goleak
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// TestChurnWhilePublishing: subscribes and unsubscribes race publications
// on the same channels. The memory broker calls Deliver under its own lock,
// so a hub that called the broker while holding its map lock would
// deadlock here; this one must not.
func TestChurnWhilePublishing(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := testCtx(t)
	channels := []string{"c:0", "c:1", "c:2"}
	// roundTrip sends cmd and reads until its reply, skipping pushes.
	roundTrip := func(c *websocket.Conn, cmd codec.Command) error {
		b, _ := codec.AppendCommand(nil, codec.Msgpack, &cmd)
		if err := c.Write(ctx, websocket.MessageBinary, b); err != nil {
			return err
		}
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				return err
			}
			// Replies carry "id" (a2 69 64) and pushes never do.
			if bytes.Contains(msg, []byte{0xa2, 'i', 'd'}) {
				return nil
			}
		}
	}
	errc := make(chan error, 8)
	for w := range 8 {
		c := dial(t, ts, "/ws")
		go func() {
			var err error
			for i := 0; i < 300 && err == nil; i++ {
				ch := []byte(channels[(w+i)%len(channels)])
				id := uint32(i*2 + 1)
				if w%2 == 0 {
					err = roundTrip(c, codec.Command{ID: id, Cmd: codec.CmdPublish, Channel: ch, Data: []byte("x")})
					continue
				}
				if err = roundTrip(c, codec.Command{ID: id, Cmd: codec.CmdSubscribe, Channel: ch}); err == nil {
					err = roundTrip(c, codec.Command{ID: id + 1, Cmd: codec.CmdUnsubscribe, Channel: ch})
				}
			}
			errc <- err
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Fatalf("client: %v (deadlock?)", err)
		}
	}
	for _, ch := range channels {
		if n := ts.hub.subscribers(ch); n != 0 {
			t.Errorf("%s: %d subscribers left", ch, n)
		}
	}
}

// With ReusePort a second server binds the first one's port (as several
// processes behind one port do); without it the bind fails.
func TestReusePortSharesTheListenPort(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	serve := func(cfg Config) error {
		srv, err := New(cfg, log)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		return nil
	}
	first, err := New(Config{Listen: "127.0.0.1:0", ReusePort: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := serve(Config{Listen: addr, ReusePort: true}); err != nil {
		t.Fatalf("second listener with SO_REUSEPORT on %s: %v", addr, err)
	}
	if err := serve(Config{Listen: addr}); err == nil {
		t.Fatalf("a listener without SO_REUSEPORT bound %s too", addr)
	}
}
