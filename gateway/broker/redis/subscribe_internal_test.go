package redis

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/gateway/broker/brokertest"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// offlineBroker is a broker with n pub/sub connections and no Redis behind
// them, all channels routed to the first: tests call diff, mark and the
// subscription hook by hand, to force interleavings a live connection
// makes rare.
func offlineBroker(t *testing.T, n int, timeout time.Duration) (*Broker, *brokertest.Recorder) {
	t.Helper()
	cfg := Config{Node: "t", Timeout: timeout}.withDefaults()
	b := &Broker{cfg: cfg, names: newNaming(cfg.Prefix, cfg.Partitions)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	t.Cleanup(b.cancel)
	rec := brokertest.NewRecorder()
	b.sink = rec
	b.subs.b = b
	b.subs.route = func(string) int { return 0 }
	for i := range n {
		b.subs.conns = append(b.subs.conns, newPubsubConn(b, i))
	}
	return b, rec
}

// subscribedOffline subscribes channels on b's only connection, as if
// Redis had confirmed them, and returns that connection.
func subscribedOffline(b *Broker, channels ...string) *pubsubConn {
	c := b.subs.conns[0]
	for _, ch := range channels {
		b.Subscribe(ch)
	}
	sub, _ := c.diff()
	c.mark(sub, true)
	return c
}

// subscribeAgain runs c's next reconcile, which must subscribe channel x
// (a Pub/Sub name) and nothing else, as if Redis confirmed it.
func subscribeAgain(t *testing.T, c *pubsubConn, x string) {
	t.Helper()
	sub, unsub := c.diff()
	if !slices.Equal(sub, []string{x}) || len(unsub) != 0 {
		t.Fatalf("next reconcile subscribes %v, unsubscribes %v; want to subscribe [%s]", sub, unsub, x)
	}
	c.mark(sub, true)
}

// TestTimedOutWaitersAreForgotten: while a wanted channel cannot be
// subscribed (Redis down), every Position call waits for it; each wait that
// times out is answered and removed, so an outage does not pile up waiters
// (and the sessions they hold) until Redis is back.
func TestTimedOutWaitersAreForgotten(t *testing.T) {
	b, _ := offlineBroker(t, 1, 10*time.Millisecond)
	c := b.subs.conns[0]
	b.Subscribe("x")
	const n = 50
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		b.subs.whenActive("x", func() { t.Error("ran on a channel never subscribed") }, func(error) { wg.Done() })
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if left := len(c.waiters[b.names.pubsubChannel("x")]); left != 0 {
		t.Fatalf("%d of %d timed-out waiters still held", left, n)
	}
}

// TestWantedAgainWhileUnsubscribing: a channel wanted again after diff
// picked it for UNSUBSCRIBE, before that is sent, is not active: a Position
// waits for the SUBSCRIBE that follows instead of reading a position whose
// successors nothing here will receive. Once subscribed again it is
// resynced: what was published while it was unsubscribed reached no one
// here.
func TestWantedAgainWhileUnsubscribing(t *testing.T) {
	b, rec := offlineBroker(t, 1, time.Minute)
	c := subscribedOffline(b, "x")
	x := b.names.pubsubChannel("x")

	b.Unsubscribe("x")
	_, unsub := c.diff() // its UNSUBSCRIBE is about to be sent
	if !slices.Equal(unsub, []string{x}) {
		t.Fatalf("unsubscribing %v, want [%s]", unsub, x)
	}
	b.Subscribe("x")
	answered := false
	b.subs.whenActive("x", func() { answered = true }, func(err error) { t.Error(err) })
	if answered {
		t.Fatal("whenActive answered while the channel's UNSUBSCRIBE was in flight")
	}
	// Redis confirms the UNSUBSCRIBE; rueidis runs the hook before Do
	// returns.
	c.onSubscription(rueidis.PubSubSubscription{Kind: "unsubscribe", Channel: x})
	c.mark(unsub, false)

	subscribeAgain(t, c, x)
	if !answered {
		t.Fatal("whenActive not answered once subscribed again")
	}
	if n := rec.Resyncs("x"); n != 1 {
		t.Fatalf("%d resyncs after subscribing again, want 1", n)
	}
}

// TestLapsedOnlyWhileWanted: a channel is marked lapsed only while it is
// wanted, and stops being lapsed when it is no longer wanted; else each
// outage would leave behind for good the channels given up during it (it
// is neither wanted nor subscribed, so no reconcile touches it again).
func TestLapsedOnlyWhileWanted(t *testing.T) {
	b, _ := offlineBroker(t, 1, time.Minute)
	c := subscribedOffline(b, "kept", "left before", "left after")

	// The connection fails; one channel is given up before the next
	// connection starts, one after.
	b.Unsubscribe("left before")
	c.connected()
	b.Unsubscribe("left after")

	c.mu.Lock()
	defer c.mu.Unlock()
	if want := map[string]bool{b.names.pubsubChannel("kept"): true, c.probe: true}; !maps.Equal(c.lapsed, want) {
		t.Fatalf("lapsed %v, want %v", c.lapsed, want)
	}
}

// TestLapsedWhileUnsubscribing: a channel whose UNSUBSCRIBE was never
// confirmed (the connection failed first) may have stayed subscribed until
// then, so wanted again it has lapsed on the next connection, and a hand-over
// counts it as subscribed.
func TestLapsedWhileUnsubscribing(t *testing.T) {
	b, _ := offlineBroker(t, 1, time.Minute)
	c := subscribedOffline(b, "x", "y")
	b.Unsubscribe("x")
	b.Unsubscribe("y")
	c.diff() // their UNSUBSCRIBE is sent, and fails with the connection
	b.Subscribe("x")
	b.Subscribe("y")
	x, y := b.names.pubsubChannel("x"), b.names.pubsubChannel("y")
	if !c.release(y).lapsed {
		t.Fatal("release: a channel still being unsubscribed counted as not subscribed")
	}
	c.connected()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lapsed[x] || len(c.unsubscribing) != 0 {
		t.Fatalf("after the connection failed: lapsed %v, unsubscribing %v; want %s lapsed, none unsubscribing", c.lapsed, c.unsubscribing, x)
	}
}

// TestNoLapsedLeftAfterAnOutage: a channel given up while Redis is down is
// not left lapsed once Redis is back.
func TestNoLapsedLeftAfterAnOutage(t *testing.T) {
	srv := redistest.StartStandalone(t)
	b, err := New(Config{URL: srv.URL(), Node: "a", PubSubShards: 1,
		ProbeInterval: 300 * time.Millisecond, ProbeTimeout: time.Second, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(brokertest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := b.subs.conns[0]
	x := b.names.pubsubChannel("x")
	lapsed := func() map[string]bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return maps.Clone(c.lapsed)
	}
	b.Subscribe("x")
	brokertest.Position(t, b, "x")

	srv.Kill()
	brokertest.WaitFor(t, "x lapsed", 5*time.Second, func() bool { return lapsed()[x] })
	b.Unsubscribe("x")
	srv.Restart()
	brokertest.WaitFor(t, "ready", 5*time.Second, b.Ready)
	if l := lapsed(); len(l) != 0 {
		t.Fatalf("lapsed after the outage: %v, want none", l)
	}
}

// TestRebalanceCarriesTheLapse: a channel moved to the connection of its
// slot's new owner (rebalance) is resynced once subscribed there, whether
// Redis had already dropped it on the old connection (lapsed there) or
// not yet (still active there): publications made during the move reached
// neither connection.
func TestRebalanceCarriesTheLapse(t *testing.T) {
	for _, dropped := range []bool{true, false} {
		b, rec := offlineBroker(t, 2, time.Minute)
		from, to := b.subs.conns[0], b.subs.conns[1]
		x := b.names.pubsubChannel("x")
		b.Subscribe("x")
		sub, _ := from.diff()
		from.mark(sub, true)
		if dropped {
			from.onSubscription(rueidis.PubSubSubscription{Kind: "sunsubscribe", Channel: x})
		}

		b.subs.route = func(string) int { return 1 } // the slot's new owner
		b.subs.rebalance()
		sub, _ = to.diff()
		to.mark(sub, true)
		if n := rec.Resyncs("x"); n != 1 {
			t.Errorf("dropped on the old connection first: %v; %d resyncs once moved, want 1", dropped, n)
		}
		from.mu.Lock()
		if len(from.lapsed) != 0 {
			t.Errorf("dropped on the old connection first: %v; lapsed left there: %v", dropped, from.lapsed)
		}
		from.mu.Unlock()
	}
}

// TestDroppedWhileUnwanted: a channel Redis drops on its own (its slot
// moved) between being given up and diff unsubscribing it is no longer
// active; wanted again, it waits for a new SUBSCRIBE instead of counting
// as subscribed for good.
func TestDroppedWhileUnwanted(t *testing.T) {
	b, _ := offlineBroker(t, 1, time.Minute)
	c := subscribedOffline(b, "x")
	x := b.names.pubsubChannel("x")

	b.Unsubscribe("x")
	c.onSubscription(rueidis.PubSubSubscription{Kind: "sunsubscribe", Channel: x})
	b.Subscribe("x")
	answered := false
	b.subs.whenActive("x", func() { answered = true }, func(err error) { t.Error(err) })
	if answered {
		t.Fatal("whenActive answered for a channel Redis had dropped")
	}
	subscribeAgain(t, c, x)
	if !answered {
		t.Fatal("whenActive not answered once subscribed again")
	}
}

// TestRebalanceHandsOverWaiters: a subscribe waiting for its channel's
// first SUBSCRIBE when the channel moves to another connection (its slot's
// new owner) is answered once the new connection subscribes it, not failed
// by its timeout; and one the new connection never confirms is still
// failed in time, and forgotten there.
func TestRebalanceHandsOverWaiters(t *testing.T) {
	for _, confirmed := range []bool{true, false} {
		b, _ := offlineBroker(t, 2, 300*time.Millisecond)
		to := b.subs.conns[1]
		b.Subscribe("x")
		answered, failed := make(chan struct{}), make(chan error, 1)
		b.subs.whenActive("x", func() { close(answered) }, func(err error) { failed <- err })

		b.subs.route = func(string) int { return 1 } // the slot's new owner
		b.subs.rebalance()
		if confirmed {
			sub, _ := to.diff()
			to.mark(sub, true)
			select {
			case <-answered:
			default:
				t.Fatal("a subscribe waiting across the move was not answered once the new connection subscribed the channel")
			}
			select {
			case err := <-failed:
				t.Fatalf("answered, then failed too: %v", err)
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-failed:
		case <-time.After(5 * time.Second):
			t.Fatal("a subscribe handed over and never confirmed was not failed by its timeout")
		}
		to.mu.Lock()
		left := len(to.waiters)
		to.mu.Unlock()
		if left != 0 {
			t.Errorf("%d waiters left on the new connection after the timeout", left)
		}
	}
}

// TestUnwantedBeforeRebalance: a channel given up after the topology
// changed (its route names the new connection) but before rebalance moved
// it is given up on the old connection too; rebalance does not carry it to
// the new one, where nobody would ever give it up again.
func TestUnwantedBeforeRebalance(t *testing.T) {
	b, _ := offlineBroker(t, 2, time.Minute)
	subscribedOffline(b, "x")
	b.subs.route = func(string) int { return 1 }
	b.Unsubscribe("x")
	b.subs.rebalance()
	x := b.names.pubsubChannel("x")
	for i, c := range b.subs.conns {
		if slices.Contains(c.wanted(), x) {
			t.Errorf("connection %d still wants the channel nobody subscribes", i)
		}
	}
}
