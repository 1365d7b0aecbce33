package drive

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/naive"
)

// startNaive runs the naive reference server in-process: it speaks the
// client protocol and is the simplest server available to a unit test.
func startNaive(t *testing.T) string {
	t.Helper()
	cfg := naive.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	srv, err := naive.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv.Addr().String()
}

func TestPublishAndMeasure(t *testing.T) {
	addr := startNaive(t)
	ctx := context.Background()
	subs, err := DialSubscribers(ctx, addr, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer subs.Close()
	if err := subs.Subscribe(ctx, []string{"a", "b", "c"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if subs.Subscribed() != 30 {
		t.Fatalf("subscribed %d", subs.Subscribed())
	}
	pub, err := DialPublisher(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// A message published before the phase begins is stale in it.
	ph0 := subs.Begin(0)
	if err := pub.Publish("a"); err != nil {
		t.Fatal(err)
	}
	if !WaitDeliveries(ctx, ph0, func() int64 { return 10 }, 5*time.Second) {
		t.Fatalf("first message: %d deliveries", ph0.Delivered())
	}
	ph := subs.Begin(pub.Seq())
	for range 3 * Window { // more than a window: Publish must wait, not fail
		for _, ch := range []string{"a", "b", "c"} {
			if err := pub.Publish(ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := int64(3*Window) * 30
	if !WaitDeliveries(ctx, ph, func() int64 { return want }, 5*time.Second) {
		t.Fatalf("delivered %d of %d", ph.Delivered(), want)
	}
	if ph.Latency.Count() != uint64(want) || ph.Latency.Max() <= 0 || ph.Last().IsZero() {
		t.Fatalf("latency samples %d, max %v", ph.Latency.Count(), ph.Latency.Max())
	}
	if bad, stale := subs.Anomalies(); bad != 0 || stale != 0 {
		t.Fatalf("bad %d stale %d", bad, stale)
	}
	if got := subs.MeanPushBytes(); got < 80 || got > 83 {
		t.Fatalf("mean push %v bytes, want 80–83", got)
	}
	// Replies travel on another connection than the deliveries: they may
	// still be on their way.
	waitUntil(ctx, 5*time.Second, func() bool { ok, _ := pub.Replies(); return ok >= int64(3*Window*3) })
	ok, errs := pub.Replies()
	if errs != 0 || ok < int64(3*Window*3) {
		t.Fatalf("replies ok %d errs %d", ok, errs)
	}
	if pub.Closed() != nil {
		t.Fatalf("publisher closed: %v", pub.Closed())
	}
}

func TestWaitDeliveriesStalls(t *testing.T) {
	var ph Phase
	start := time.Now()
	if WaitDeliveries(context.Background(), &ph, func() int64 { return 1 }, 50*time.Millisecond) {
		t.Fatal("no delivery, yet done")
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("stall not detected")
	}
}
