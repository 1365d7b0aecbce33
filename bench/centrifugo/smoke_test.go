package centrifugo

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/sleepers"
)

// cachedBinary returns the release from the cache, or skips: Centrifugo
// is a benchmark dependency that wsbench installs on demand (minutes of
// building), not a test dependency. The unit tests above run without it.
func cachedBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Centrifugo")
	}
	cache, err := CacheDir()
	if err != nil {
		t.Skip(err)
	}
	bin, ok := Installed(context.Background(), cache)
	if !ok {
		t.Skipf("Centrifugo %s is not in %s (wsbench --target centrifugo installs it)", Version, cache)
	}
	return bin
}

// TestSmoke runs the cached release as wsbench configures it and drives
// it like the scenarios do: connect and subscribe through the dialect,
// publish one message and a batched burst through the API, answer pings,
// read its heap from the debug endpoint, and stop it cleanly.
func TestSmoke(t *testing.T) {
	bin := cachedBinary(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A 2 s ping interval: the subscribers must answer pings for the
	// connections to survive the test.
	cfg, err := Config{PingInterval: 2 * time.Second, APIKey: "smoke"}.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := server.Start(ctx, Spec(bin, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	const subs = 50
	pool, err := drive.DialSubscribers(ctx, Dialect{}, p.Addr, subs, 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.Subscribe(ctx, []string{"a", "b"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if pool.Subscribed() != subs {
		t.Fatalf("subscribed %d of %d", pool.Subscribed(), subs)
	}
	// Non-readers connect and subscribe with one message.
	sl, err := sleepers.Dial(ctx, sleepers.Config{Addr: p.Addr, Path: Path, Conns: 2, Hello: Dialect{}.Hello("a"), HelloText: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()

	pub := NewPublisher(p.DebugAddr, "smoke", 0)
	defer pub.Close()
	ph := pool.Begin(0)
	if err := pub.Publish("a"); err != nil {
		t.Fatal(err)
	}
	var burst []string
	for range 40 {
		burst = append(burst, "a", "b")
	}
	if err := pub.Publish(burst...); err != nil {
		t.Fatal(err)
	}
	want := int64(subs/2 + 40*subs)
	if !drive.WaitDeliveries(ctx, ph, func() int64 { return want }, 5*time.Second) {
		t.Fatalf("delivered %d of %d", ph.Delivered(), want)
	}
	if ok, errs := pub.Replies(); ok != 81 || errs != 0 {
		t.Fatalf("publish replies %d ok, %d refused", ok, errs)
	}
	if bad, stale := pool.Anomalies(); bad != 0 || stale != 0 {
		t.Fatalf("%d bad, %d stale pushes", bad, stale)
	}

	// Past two ping intervals everyone is still there: pings answered.
	time.Sleep(5 * time.Second)
	sc := scrape.New(p.DebugAddr)
	m, err := sc.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := pool.Stats(); st.Closed != 0 || Clients(m) < subs {
		t.Fatalf("closed %d %v, %v clients", st.Closed, st.Closes, Clients(m))
	}
	// Centrifugo's pings are application messages: counted all the same.
	if got := pool.PingsAnswered(); got < uint64(subs) {
		t.Fatalf("%d pings answered by %d subscribers over two ping intervals", got, subs)
	}
	if heap, err := sc.HeapInuse(ctx); err != nil || heap <= 0 {
		t.Fatalf("heap %d %v", heap, err)
	}
	if n, err := sc.Goroutines(ctx); err != nil || n < subs {
		t.Fatalf("goroutines %d %v", n, err)
	}
}
