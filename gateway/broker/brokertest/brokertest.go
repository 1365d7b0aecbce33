// Package brokertest is the conformance suite every broker.Broker passes:
// ordering, positions, history and idempotent publishing, the same for
// the embedded broker and for Redis. Broker packages run it from their
// tests with a factory for a fresh broker.
package brokertest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

// Factory returns a started broker delivering to sink, on a store no
// other test uses, closed when the test ends.
type Factory func(t *testing.T, sink broker.Sink) broker.Broker

// Run runs the suite against the brokers newBroker makes.
func Run(t *testing.T, newBroker Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"OrderAndPosition", testOrderAndPosition},
		{"History", testHistory},
		{"OnlySubscribedChannels", testOnlySubscribed},
		{"IdempotentPublish", testIdempotentPublish},
		{"IdempotentPublishConcurrent", testIdempotentConcurrent},
		{"Events", testEvents},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBroker) })
	}
}

// Recorder is a broker.Sink that keeps what it receives, per channel.
type Recorder struct {
	mu      sync.Mutex
	got     map[string][]codec.Publication
	resyncs map[string]int
	full    bool
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{got: map[string][]codec.Publication{}, resyncs: map[string]int{}}
}

// Deliver implements broker.Sink; it copies p (its bytes may alias a
// buffer the broker reuses).
func (r *Recorder) Deliver(p *codec.Publication) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return false
	}
	c := *p
	c.Channel, c.Data, c.Epoch = slices.Clone(p.Channel), slices.Clone(p.Data), slices.Clone(p.Epoch)
	c.Client, c.User, c.Node = slices.Clone(p.Client), slices.Clone(p.User), slices.Clone(p.Node)
	r.got[string(p.Channel)] = append(r.got[string(p.Channel)], c)
	return true
}

// Resync implements broker.Sink by counting the calls per channel.
func (r *Recorder) Resync(channel string) {
	r.mu.Lock()
	r.resyncs[channel]++
	r.mu.Unlock()
}

// SetFull makes Deliver refuse everything (a full hub) or accept again.
func (r *Recorder) SetFull(full bool) {
	r.mu.Lock()
	r.full = full
	r.mu.Unlock()
}

// Got returns a copy of what channel received.
func (r *Recorder) Got(channel string) []codec.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[channel])
}

// Count is how many envelopes channel received.
func (r *Recorder) Count(channel string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got[channel])
}

// Offsets lists the offsets channel received, in order.
func (r *Recorder) Offsets(channel string) []uint64 {
	var out []uint64
	for _, p := range r.Got(channel) {
		out = append(out, p.Offset)
	}
	return out
}

// Resyncs is how many times channel was resynced.
func (r *Recorder) Resyncs(channel string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncs[channel]
}

// Publish publishes synchronously.
func Publish(b broker.Broker, channel, data string, opts broker.PublishOptions) (broker.PublishResult, error) {
	type answer struct {
		res broker.PublishResult
		err error
	}
	c := make(chan answer, 1)
	b.Publish(channel, []byte(data), opts, func(res broker.PublishResult, err error) { c <- answer{res, err} })
	a := <-c
	return a.res, a.err
}

// Position reads channel's position synchronously.
func Position(t testing.TB, b broker.Broker, channel string) broker.Position {
	t.Helper()
	type answer struct {
		pos broker.Position
		err error
	}
	c := make(chan answer, 1)
	b.Position(channel, func(p broker.Position, err error) { c <- answer{p, err} })
	a := <-c
	if a.err != nil {
		t.Fatalf("position of %s: %v", channel, a.err)
	}
	return a.pos
}

// History reads channel's history synchronously.
func History(t testing.TB, b broker.Broker, channel string, q broker.HistoryQuery) broker.HistoryResult {
	t.Helper()
	type answer struct {
		res broker.HistoryResult
		err error
	}
	c := make(chan answer, 1)
	b.History(channel, q, func(r broker.HistoryResult, err error) { c <- answer{r, err} })
	a := <-c
	if a.err != nil {
		t.Fatalf("history of %s: %v", channel, a.err)
	}
	return a.res
}

// WaitFor polls cond until it holds or d passes.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustPublish(t *testing.T, b broker.Broker, channel, data string, opts broker.PublishOptions) broker.PublishResult {
	t.Helper()
	res, err := Publish(b, channel, data, opts)
	if err != nil {
		t.Fatalf("publish %q to %s: %v", data, channel, err)
	}
	return res
}

// subscribe declares interest and waits until the subscription is live
// (Position answers only then).
func subscribe(t *testing.T, b broker.Broker, channel string) broker.Position {
	b.Subscribe(channel)
	return Position(t, b, channel)
}

func testOrderAndPosition(t *testing.T, newBroker Factory) {
	rec := NewRecorder()
	b := newBroker(t, rec)
	start := subscribe(t, b, "order")
	const n = 50
	var epoch string
	for i := 1; i <= n; i++ {
		res := mustPublish(t, b, "order", fmt.Sprint(i), broker.PublishOptions{})
		if res.Offset != start.Offset+uint64(i) || res.Replayed {
			t.Fatalf("publication %d got %+v, want offset %d", i, res, start.Offset+uint64(i))
		}
		epoch = res.Epoch
	}
	if epoch == "" || epoch != start.Epoch {
		t.Fatalf("epoch %q, position said %q", epoch, start.Epoch)
	}
	WaitFor(t, "deliveries", 5*time.Second, func() bool { return rec.Count("order") == n })
	for i, p := range rec.Got("order") {
		if p.Offset != start.Offset+uint64(i+1) || string(p.Data) != fmt.Sprint(i+1) || string(p.Epoch) != epoch {
			t.Fatalf("delivery %d: offset %d data %q epoch %q", i, p.Offset, p.Data, p.Epoch)
		}
	}
	if pos := Position(t, b, "order"); pos.Offset != start.Offset+n || pos.Epoch != epoch {
		t.Fatalf("position %+v after %d publications", pos, n)
	}
}

func testHistory(t *testing.T, newBroker Factory) {
	b := newBroker(t, NewRecorder())
	for i := 1; i <= 5; i++ {
		mustPublish(t, b, "hist", fmt.Sprint(i), broker.PublishOptions{})
	}
	offsets := func(r broker.HistoryResult) string {
		var out []string
		for _, e := range r.Publications {
			out = append(out, fmt.Sprintf("%d=%s", e.Offset, e.Data))
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		q    broker.HistoryQuery
		want string
	}{
		{broker.HistoryQuery{}, "[1=1 2=2 3=3 4=4 5=5]"},
		{broker.HistoryQuery{Since: 3}, "[4=4 5=5]"},
		{broker.HistoryQuery{Since: 1, Limit: 2}, "[2=2 3=3]"},
		{broker.HistoryQuery{Reverse: true, Limit: 2}, "[5=5 4=4]"},
		{broker.HistoryQuery{Reverse: true, Since: 3}, "[5=5 4=4]"},
		{broker.HistoryQuery{Reverse: true, Since: 1, Limit: 10}, "[5=5 4=4 3=3 2=2]"},
		{broker.HistoryQuery{Since: 5}, "[]"},
	} {
		res := History(t, b, "hist", tc.q)
		if got := offsets(res); got != tc.want || res.Position.Offset != 5 || res.Position.Epoch == "" {
			t.Errorf("%+v: %s at %+v, want %s at offset 5", tc.q, got, res.Position, tc.want)
		}
	}
}

func testOnlySubscribed(t *testing.T, newBroker Factory) {
	rec := NewRecorder()
	b := newBroker(t, rec)
	subscribe(t, b, "wanted")
	mustPublish(t, b, "unwanted", "x", broker.PublishOptions{})
	mustPublish(t, b, "wanted", "y", broker.PublishOptions{})
	WaitFor(t, "the wanted publication", 5*time.Second, func() bool { return rec.Count("wanted") == 1 })
	b.Unsubscribe("wanted")
	time.Sleep(50 * time.Millisecond) // Redis unsubscribes asynchronously
	mustPublish(t, b, "wanted", "z", broker.PublishOptions{})
	time.Sleep(100 * time.Millisecond)
	if rec.Count("unwanted") != 0 || rec.Count("wanted") != 1 {
		t.Fatalf("unwanted got %d, wanted %d", rec.Count("unwanted"), rec.Count("wanted"))
	}
}

// testIdempotentPublish: a repeat of a key publishes nothing and answers
// the first position; other data under the key is refused; keys are
// scoped by channel.
func testIdempotentPublish(t *testing.T, newBroker Factory) {
	rec := NewRecorder()
	b := newBroker(t, rec)
	subscribe(t, b, "idem")
	key := broker.PublishOptions{IdempotencyKey: "order-7"}
	first := mustPublish(t, b, "idem", "shipped", key)
	mustPublish(t, b, "idem", "other", broker.PublishOptions{})
	again := mustPublish(t, b, "idem", "shipped", key)
	if first.Replayed || !again.Replayed || again.Position != first.Position {
		t.Fatalf("first %+v, repeat %+v", first, again)
	}
	if _, err := Publish(b, "idem", "changed", key); !errors.Is(err, broker.ErrKeyReused) {
		t.Fatalf("other data under the key: %v, want ErrKeyReused", err)
	}
	if res := mustPublish(t, b, "idem2", "shipped", key); res.Replayed {
		t.Fatalf("the key was not scoped by channel: %+v", res)
	}
	WaitFor(t, "deliveries", 5*time.Second, func() bool { return rec.Count("idem") >= 2 })
	time.Sleep(50 * time.Millisecond)
	if got := rec.Offsets("idem"); len(got) != 2 {
		t.Fatalf("delivered %v, want the first and the other only", got)
	}
}

func testIdempotentConcurrent(t *testing.T, newBroker Factory) {
	rec := NewRecorder()
	b := newBroker(t, rec)
	subscribe(t, b, "race")
	const n = 20
	results := make([]broker.PublishResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = Publish(b, "race", "once", broker.PublishOptions{IdempotencyKey: "k"})
		})
	}
	wg.Wait()
	published := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("publish %d: %v", i, errs[i])
		}
		if results[i].Position != results[0].Position {
			t.Fatalf("positions differ: %+v vs %+v", results[i], results[0])
		}
		if !results[i].Replayed {
			published++
		}
	}
	if published != 1 {
		t.Fatalf("%d of %d concurrent publishes with one key published", published, n)
	}
	WaitFor(t, "the delivery", 5*time.Second, func() bool { return rec.Count("race") == 1 })
	time.Sleep(50 * time.Millisecond)
	if rec.Count("race") != 1 {
		t.Fatalf("delivered %d times", rec.Count("race"))
	}
}

func testEvents(t *testing.T, newBroker Factory) {
	rec := NewRecorder()
	b := newBroker(t, rec)
	subscribe(t, b, "ev")
	b.PublishEvent("ev", codec.KindJoin, "c-1", "u-1")
	mustPublish(t, b, "ev", "p", broker.PublishOptions{})
	b.PublishEvent("ev", codec.KindLeave, "c-1", "u-1")
	WaitFor(t, "events", 5*time.Second, func() bool { return rec.Count("ev") == 3 })
	got := rec.Got("ev")
	if got[0].Kind != codec.KindJoin || string(got[0].Client) != "c-1" || string(got[0].User) != "u-1" ||
		got[1].Kind != codec.KindPublication || got[2].Kind != codec.KindLeave || got[0].Offset != 0 {
		t.Fatalf("got %+v", got)
	}
}
