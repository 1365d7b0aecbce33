package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/brokertest"
	"github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// conformance returns a brokertest factory on url: every broker gets a
// prefix of its own, so the subtests share one Redis and nothing else.
func conformance(url string) brokertest.Factory {
	return func(t *testing.T, sink broker.Sink) broker.Broker {
		b, err := redis.New(redis.Config{URL: url, Node: "conf", Prefix: fmt.Sprintf("t%x", rand.Uint64()),
			ProbeInterval: time.Second, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(sink); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	brokertest.Run(t, conformance(redistest.StartStandalone(t).URL()))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis cluster")
	}
	brokertest.Run(t, conformance(redistest.StartCluster(t, 3).URL()))
}

// fcall runs the documented backend publish (README, "Publishing from a
// backend"), with an idempotency key when key is not empty.
func fcall(ctx context.Context, client rueidis.Client, ch, data, key string) ([]rueidis.RedisMessage, error) {
	keys := []string{metaKey(ch), historyKey(ch)}
	args := []string{pubsubChannel(ch), ch, data, "billing-service", "", "86400000", "PUBLISH", "100", "300000"}
	if key != "" {
		keys = append(keys, fmt.Sprintf("wsgate:{%d}:i:%s|%s", partition(ch), ch, key))
		args = append(args, "300000")
	}
	cmd := client.B().Fcall().Function("wsgate_publish").Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
	return client.Do(ctx, cmd).ToArray()
}

// TestBackendPublishAfterRestart: after Redis restarts empty, the gateway
// loads its functions again on its own, so a backend's FCALL works soon
// after Redis accepts connections — with no gateway publishing. README
// says within a second (the reconnect backoff is at most 500 ms); the
// bound here is the 2 s its backend recipe retries for, so a loaded test
// machine does not fail it.
func TestBackendPublishAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.StartStandalone(t)
	a, _ := startBroker(t, srv.URL(), "a", nil)
	a.Subscribe("orders")
	position(t, a, "orders")
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv.Kill()
	waitFor(t, "not ready", 5*time.Second, func() bool { return !a.Ready() })
	srv.Restart() // returns once Redis answers
	accepting := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := fcall(ctx, client, "orders", "after restart", "")
		cancel()
		if err == nil {
			break
		}
		if time.Since(accepting) > 2*time.Second {
			t.Fatalf("backend FCALL still failing %v after Redis came back: %v", time.Since(accepting), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("backend FCALL works %v after Redis accepted connections", time.Since(accepting).Round(time.Millisecond))
}

// TestResyncAfterLapse: every channel subscribed when the pub/sub
// connections were lost is resynced once they are subscribed again (and
// only then); the gateway's own publications work right away too.
func TestResyncAfterLapse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", nil)
	const channels = 50
	for i := range channels {
		a.Subscribe(fmt.Sprint("ch", i))
	}
	waitFor(t, "ready", 5*time.Second, a.Ready)
	for i := range channels {
		if rec.Resyncs(fmt.Sprint("ch", i)) != 0 {
			t.Fatal("resync before any lapse")
		}
	}
	srv.Kill()
	srv.Restart()
	waitFor(t, "every channel resynced", 5*time.Second, func() bool {
		for i := range channels {
			if rec.Resyncs(fmt.Sprint("ch", i)) != 1 {
				return false
			}
		}
		return true
	})
	if !a.Ready() {
		t.Fatal("resynced before ready")
	}
	if _, err := publish(a, "ch1", "x"); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
}

// TestPublishErrorsSayWhatHappened: Redis unreachable is "not published"
// (ErrUnavailable); a Redis that stalls past the timeout is "outcome
// unknown" — the function may or may not have run — and a retry with the
// same idempotency key, through another instance, makes it exactly one
// publication either way.
func TestPublishErrorsSayWhatHappened(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.StartStandalone(t)
	short := func(c *redis.Config) { c.Timeout = 300 * time.Millisecond }
	a, _ := startBroker(t, srv.URL(), "a", short)
	b, _ := startBroker(t, srv.URL(), "b", nil)
	key := broker.PublishOptions{IdempotencyKey: "pay-1"}
	executed := 0
	for attempt := range 6 { // both outcomes of a stall occur; each must end in one publication
		ch := fmt.Sprint("pay", attempt)
		srv.Stop()
		_, err := brokertest.Publish(a, ch, "100 EUR", key)
		srv.Cont()
		if !errors.Is(err, broker.ErrOutcomeUnknown) {
			t.Fatalf("publish to a stalled Redis: %v, want ErrOutcomeUnknown", err)
		}
		// The stalled call may run before the retry, or after it (Redis
		// reads the stalled connection when it likes): the key makes one
		// publication of the two either way.
		res, err := brokertest.Publish(b, ch, "100 EUR", key) // the retry, through the other instance
		if err != nil || res.Offset != 1 {
			t.Fatalf("retry after a stall: %+v %v", res, err)
		}
		if res.Replayed {
			executed++
		}
		time.Sleep(50 * time.Millisecond) // a stalled call still queued would run now
		if n := len(brokertest.History(t, b, ch, broker.HistoryQuery{}).Publications); n != 1 {
			t.Fatalf("published %d times", n)
		}
	}
	t.Logf("the stalled publish ran before its retry in %d of 6 attempts; every retry made it exactly one", executed)

	// A publish racing the kill may be written to the dying connection and
	// end in EOF: "outcome unknown" is the truth then. Once the connection
	// is gone, every publish is "not published".
	srv.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := brokertest.Publish(a, "pay", "200 EUR", broker.PublishOptions{})
		if errors.Is(err, broker.ErrUnavailable) && !errors.Is(err, broker.ErrOutcomeUnknown) {
			break
		}
		if !errors.Is(err, broker.ErrOutcomeUnknown) || time.Now().After(deadline) {
			t.Fatalf("publish with Redis down: %v, want ErrUnavailable", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBackendIdempotentPublish: the documented FCALL with an idempotency
// key publishes once and answers a repeat with the first offset and a
// third element 1; other data under the key is an error.
func TestBackendIdempotentPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", nil)
	a.Subscribe("orders")
	position(t, a, "orders")
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	first, err := fcall(ctx, client, "orders", "order 7 shipped", "order-7")
	if err != nil || len(first) != 2 {
		t.Fatalf("first: %v %v", first, err)
	}
	again, err := fcall(ctx, client, "orders", "order 7 shipped", "order-7")
	if err != nil || len(again) != 3 {
		t.Fatalf("repeat: %v %v", again, err)
	}
	o1, _ := first[0].AsInt64()
	o2, _ := again[0].AsInt64()
	if o1 != o2 {
		t.Fatalf("repeat offset %d, first %d", o2, o1)
	}
	// The gateway's own publish with the key sees the backend's.
	res, err := brokertest.Publish(a, "orders", "order 7 shipped", broker.PublishOptions{IdempotencyKey: "order-7"})
	if err != nil || !res.Replayed || res.Offset != uint64(o1) {
		t.Fatalf("gateway repeat: %+v %v", res, err)
	}
	if _, err := fcall(ctx, client, "orders", "order 7 lost", "order-7"); err == nil {
		t.Fatal("other data under the key was accepted")
	}
	waitFor(t, "one delivery", 5*time.Second, func() bool { return rec.Count("orders") == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := rec.Count("orders"); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}

// TestSnapshotRestartStartsNewEpoch: Redis restarted from a snapshot that
// ends before the last publications would hand their offsets out again; a
// new epoch (offsets from 1, the stale history gone) makes that visible.
func TestSnapshotRestartStartsNewEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", nil)
	a.Subscribe("c")
	before := position(t, a, "c")
	for i := range 5 {
		publish(a, "c", fmt.Sprint(i))
	}
	if _, err := srv.Do("SAVE"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		publish(a, "c", fmt.Sprint("after snapshot ", i))
	}
	srv.RestartFromSnapshot()
	waitFor(t, "resync", 5*time.Second, func() bool { return rec.Resyncs("c") == 1 })
	pos := position(t, a, "c")
	if pos.Epoch == before.Epoch || pos.Offset != 0 {
		t.Fatalf("after restart from a stale snapshot: %+v, was %+v: want a new epoch from offset 0", pos, before)
	}
	// The first command on a pooled connection Redis dropped may fail as
	// "outcome unknown": retry with a key, as a client would.
	var res broker.PublishResult
	var err error
	for range 5 {
		res, err = brokertest.Publish(a, "c", "new", broker.PublishOptions{IdempotencyKey: "new"})
		if !errors.Is(err, broker.ErrOutcomeUnknown) {
			break
		}
	}
	if err != nil || res.Offset != 1 || res.Epoch != pos.Epoch {
		t.Fatalf("first publication of the new epoch: %+v %v", res, err)
	}
	h := brokertest.History(t, a, "c", broker.HistoryQuery{})
	if len(h.Publications) != 1 || string(h.Publications[0].Data) != "new" {
		t.Fatalf("history of the new epoch: %+v", h.Publications)
	}
}

// TestLostMetaStartsCleanEpoch: a channel's meta key can go while its
// history stream stays (evicted under maxmemory, or a history ttl longer
// than the meta ttl). The new epoch then starts from a clean stream: the
// first publish gets offset 1 (not an XADD error after using up an
// offset), and history never serves the old epoch's entries under the new
// epoch — whether a publish or a history read comes first.
func TestLostMetaStartsCleanEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.StartStandalone(t)
	a, _ := startBroker(t, srv.URL(), "a", nil)
	old := map[string]broker.Position{}
	for _, ch := range []string{"publish-first", "history-first"} {
		for i := range 3 {
			pos, err := publish(a, ch, fmt.Sprint("old ", i))
			if err != nil {
				t.Fatalf("publish to %s: %v", ch, err)
			}
			old[ch] = pos
		}
		if _, err := srv.Do("DEL", metaKey(ch)); err != nil {
			t.Fatal(err)
		}
	}

	res, err := brokertest.Publish(a, "publish-first", "new", broker.PublishOptions{})
	if err != nil || res.Offset != 1 || res.Epoch == old["publish-first"].Epoch {
		t.Fatalf("first publish after the meta key went: %+v %v, want offset 1 of a new epoch (was %+v)", res, err, old["publish-first"])
	}
	if h := brokertest.History(t, a, "publish-first", broker.HistoryQuery{}); len(h.Publications) != 1 ||
		string(h.Publications[0].Data) != "new" || h.Position != res.Position {
		t.Fatalf("history after the first publish of the new epoch: %+v, want only it at %+v", h, res.Position)
	}

	h := brokertest.History(t, a, "history-first", broker.HistoryQuery{})
	if len(h.Publications) != 0 || h.Position.Offset != 0 || h.Position.Epoch == old["history-first"].Epoch {
		t.Fatalf("history after the meta key went: %+v, want nothing of a new epoch (was %+v)", h, old["history-first"])
	}
	if res, err := brokertest.Publish(a, "history-first", "new", broker.PublishOptions{}); err != nil || res.Position != (broker.Position{Epoch: h.Position.Epoch, Offset: 1}) {
		t.Fatalf("first publish after the history read: %+v %v, want offset 1 of %s", res, err, h.Position.Epoch)
	}
}
