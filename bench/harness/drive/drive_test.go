package drive

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/bench/naive"
	"github.com/wsgate/wsgate/codec"
)

// startNaive runs the naive reference server in-process: it speaks the
// client protocol and is the simplest server available to a unit test.
func startNaive(t *testing.T) string {
	t.Helper()
	cfg := naive.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	// Deep enough for every publication a test sends: on a busy machine a
	// subscriber's reader may lag, and the naive server would close it as
	// a slow consumer, which is not what these tests measure.
	cfg.SendBuffer = 16 * Window
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
	subs, err := DialSubscribers(ctx, Wsgate{}, addr, 30, 0, 10*time.Second)
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
		if err := pub.Publish("a", "b", "c"); err != nil {
			t.Fatal(err)
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
	if err := pub.Failure(); err != nil {
		t.Fatal(err)
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

// TestWsgateDialect reads what wsgate sends: a stamped message, a reply,
// a refusal, and something that is not MessagePack.
func TestWsgateDialect(t *testing.T) {
	var d Dialect = Wsgate{}
	sent := time.Unix(1700000000, 123456789)
	data := wire.NewData(20)
	wire.Stamp(data, 42, sent)
	msg := codec.AppendMessage(nil, codec.Msgpack, "ch", 7, wire.TypicalEpoch, data)
	var got []Frame
	collect := func(f Frame) { got = append(got, f) }
	if err := d.Read(msg, collect); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != KindMessage || !got[0].Stamped || got[0].Seq != 42 ||
		!got[0].Sent.Equal(sent) || got[0].Bytes != len(msg) {
		t.Fatalf("message: %+v", got)
	}
	got = nil
	ok := codec.AppendReply(nil, codec.Msgpack, codec.Reply{ID: 3, Cmd: codec.CmdSubscribe})
	refused := codec.AppendError(nil, codec.Msgpack, 4, codec.ErrorCode(103), "no")
	for _, m := range [][]byte{ok, refused} {
		if err := d.Read(m, collect); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0].Kind != KindReply || got[0].Failed || got[1].Kind != KindReply || !got[1].Failed {
		t.Fatalf("replies: %+v", got)
	}
	got = nil
	if err := d.Read([]byte("{}"), collect); err == nil || len(got) != 0 {
		t.Fatalf("JSON read as msgpack: %v %+v", err, got)
	}
	if d.Connect(1) != nil || d.Opcode() != loadclient.OpBinary || d.Path() != Path {
		t.Fatal("wsgate needs no connect; binary frames on /ws")
	}
}

// BenchmarkWsgateRead is the client's cost per received message push.
func BenchmarkWsgateRead(b *testing.B) {
	data := wire.NewData(wire.DataBytes("fanout"))
	wire.Stamp(data, 1, time.Now())
	msg := codec.AppendMessage(nil, codec.Msgpack, "fanout", 7, wire.TypicalEpoch, data)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		_ = Wsgate{}.Read(msg, func(Frame) {})
	}
}
