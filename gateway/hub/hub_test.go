package hub

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// nopBroker records interest changes.
type nopBroker struct {
	mu     sync.Mutex
	events []string
}

func (b *nopBroker) Start(broker.Sink) error { return nil }
func (b *nopBroker) Publish(string, []byte, broker.PublishOptions, func(broker.PublishResult, error)) {
}
func (b *nopBroker) Subscribe(ch string) {
	b.mu.Lock()
	b.events = append(b.events, "sub "+ch)
	b.mu.Unlock()
}
func (b *nopBroker) Unsubscribe(ch string) {
	b.mu.Lock()
	b.events = append(b.events, "unsub "+ch)
	b.mu.Unlock()
}
func (b *nopBroker) PublishEvent(string, codec.Kind, string, string) {}
func (b *nopBroker) Position(string, func(broker.Position, error))   {}
func (b *nopBroker) History(string, broker.HistoryQuery, func(broker.HistoryResult, error)) {
}
func (b *nopBroker) Close() error { return nil }

// fakeSub records frames; it reports "flush needed" on the first frame after
// each flush, like a connection does.
type fakeSub struct {
	enc     codec.Encoding
	mu      sync.Mutex
	frames  [][]byte
	pending bool
	flushes int
	runs    int // Enqueue calls
}

func (s *fakeSub) Encoding() codec.Encoding { return s.enc }
func (s *fakeSub) Enqueue(_ []*codec.Publication, f [][]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = append(s.frames, f...)
	s.runs++
	first := !s.pending
	s.pending = true
	return first
}
func (s *fakeSub) Flush() {
	s.mu.Lock()
	s.pending = false
	s.flushes++
	s.mu.Unlock()
}

func TestInterestFollowsFirstAndLastSubscriber(t *testing.T) {
	b := &nopBroker{}
	h := New(Config{}, b)
	a, c := &fakeSub{}, &fakeSub{}
	must(t, h.Subscribe("x", a))
	must(t, h.Subscribe("x", c))
	if err := h.Subscribe("x", a); err != ErrAlreadySubscribed {
		t.Fatalf("duplicate subscribe: %v", err)
	}
	h.Unsubscribe("x", a)
	h.Unsubscribe("x", c)
	if h.Unsubscribe("x", c) {
		t.Fatal("unsubscribed twice")
	}
	if got := fmt.Sprint(b.events); got != "[sub x unsub x]" {
		t.Fatalf("broker saw %s", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeliverySharesFramesInOrder: every subscriber gets every publication
// of its channel in order, subscribers of one encoding share one frame, and
// other channels' subscribers get nothing.
func TestDeliverySharesFramesInOrder(t *testing.T) {
	h := New(Config{}, &nopBroker{})
	h.Start()
	subs := []*fakeSub{{enc: codec.Msgpack}, {enc: codec.Msgpack}, {enc: codec.JSON}}
	other := &fakeSub{enc: codec.Msgpack}
	for _, s := range subs {
		must(t, h.Subscribe("news", s))
	}
	must(t, h.Subscribe("other", other))
	const n = 1000
	for i := 1; i <= n; i++ {
		for !h.Deliver(&codec.Publication{Channel: []byte("news"), Offset: uint64(i), Data: []byte(fmt.Sprint(i))}) {
		}
	}
	h.Close()
	for i, s := range subs {
		if len(s.frames) != n {
			t.Fatalf("subscriber %d got %d frames, want %d", i, len(s.frames), n)
		}
		if s.flushes == 0 || s.flushes > n {
			t.Fatalf("subscriber %d flushed %d times", i, s.flushes)
		}
	}
	for i := range n {
		if &subs[0].frames[i][0] != &subs[1].frames[i][0] {
			t.Fatalf("frame %d not shared between msgpack subscribers", i)
		}
		want := messageFrame(codec.Msgpack, &codec.Publication{Channel: []byte("news"), Offset: uint64(i + 1), Data: []byte(fmt.Sprint(i + 1))})
		if string(subs[0].frames[i]) != string(want) {
			t.Fatalf("frame %d out of order or wrong", i)
		}
	}
	if len(other.frames) != 0 {
		t.Fatalf("other channel's subscriber got %d frames", len(other.frames))
	}
}

// TestDeliverAllocations: fanning one publication out to 10,000 local
// subscribers allocates at most 2 objects (the frame per encoding in use),
// however many subscribers there are.
func TestDeliverAllocations(t *testing.T) {
	for _, n := range []int{100, 10000} {
		h := New(Config{}, &nopBroker{})
		subs := make([]*countSub, n)
		for i := range subs {
			subs[i] = &countSub{}
			must(t, h.Subscribe("c", subs[i]))
		}
		w := worker{shard: h.shard("c")}
		p := &codec.Publication{Channel: []byte("c"), Offset: 1, Data: make([]byte, 64)}
		batch := []*codec.Publication{p}
		w.deliverBatch(batch) // warm the reusable buffers
		w.flush()
		before := subs[0].n
		allocs := testing.AllocsPerRun(20, func() {
			p.Offset++ // a new publication each run (a repeated offset is a dropped duplicate)
			w.deliverBatch(batch)
			w.flush()
		})
		t.Logf("%d subscribers: %.1f allocations per publication", n, allocs)
		if allocs > 2 {
			t.Fatalf("%d subscribers: %.1f allocations per publication, want ≤ 2", n, allocs)
		}
		if got := subs[0].n - before; got != 21 { // AllocsPerRun runs once more to warm up
			t.Fatalf("a subscriber got %d of 21 publications: the measured path did not deliver", got)
		}
	}
}

// countSub is an allocation-free subscriber.
type countSub struct{ n int }

func (s *countSub) Encoding() codec.Encoding { return codec.Msgpack }
func (s *countSub) Enqueue(p []*codec.Publication, _ [][]byte) bool {
	s.n += len(p)
	return s.n%2 == 1
}
func (s *countSub) Flush() {}

// BenchmarkDeliver10k measures publish → frame → enqueue to 10,000 local
// subscribers (b.N publications; allocs/op is per publication).
func BenchmarkDeliver10k(b *testing.B) {
	h := New(Config{}, &nopBroker{})
	for range 10000 {
		must2(b, h.Subscribe("c", &countSub{}))
	}
	w := worker{shard: h.shard("c")}
	p := &codec.Publication{Channel: []byte("c"), Data: make([]byte, 64)}
	batch := []*codec.Publication{p}
	b.ReportAllocs()
	for b.Loop() {
		p.Offset++ // the next publication each time (from 1: a repeated offset is a dropped duplicate, a skipped one a gap)
		w.deliverBatch(batch)
		w.flush()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/delivery")
}

func must2(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// historyBroker serves History from a map (asynchronously, like Redis);
// set changes it (a broker restart, publications it kept).
type historyBroker struct {
	nopBroker
	hmu     sync.Mutex
	entries map[uint64]string
	epoch   string
	top     uint64 // the position's offset (0: the highest entry)
}

func (b *historyBroker) set(epoch string, top uint64, entries map[uint64]string) {
	b.hmu.Lock()
	b.epoch, b.top, b.entries = epoch, top, entries
	b.hmu.Unlock()
}

func (b *historyBroker) History(_ string, q broker.HistoryQuery, done func(broker.HistoryResult, error)) {
	b.hmu.Lock()
	var res broker.HistoryResult
	res.Position = broker.Position{Epoch: b.epoch, Offset: b.top}
	for off := range b.entries {
		res.Position.Offset = max(res.Position.Offset, off)
	}
	last := q.Since + uint64(q.Limit)
	if q.Limit == 0 {
		last = res.Position.Offset
	}
	for off := q.Since + 1; off <= last; off++ {
		if d, ok := b.entries[off]; ok {
			res.Publications = append(res.Publications, broker.HistoryEntry{Offset: off, Data: []byte(d)})
		}
	}
	b.hmu.Unlock()
	go done(res, nil)
}

// TestGapsAreFilledFromHistory: an offset jump on live delivery is filled
// from history before delivery goes on, in order; duplicates are dropped;
// what history no longer has is counted as lost.
func TestGapsAreFilledFromHistory(t *testing.T) {
	b := &historyBroker{epoch: "e1", entries: map[uint64]string{3: "3", 4: "4", 8: "8"}}
	h := New(Config{}, b)
	h.Start()
	sub := &fakeSub{enc: codec.Msgpack}
	must(t, h.Subscribe("c", sub))
	pub := func(off uint64) {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: off, Epoch: []byte("e1"), Data: []byte(fmt.Sprint(off))}) {
		}
	}
	for _, off := range []uint64{1, 2, 5, 6, 6, 2, 9, 10} { // 3,4 missing (in history); 7 lost; 8 in history
		pub(off)
	}
	waitFrames(sub, 10)
	h.Close()
	var got []string
	for _, f := range sub.frames {
		var m map[string]any
		if err := msgpack.Unmarshal(f[2:], &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "gap" {
			got = append(got, fmt.Sprintf("gap %v-%v", m["from"], m["to"]))
			continue
		}
		got = append(got, fmt.Sprint(m["offset"]))
	}
	// 7 is gone from history: subscribers are told, in its place.
	if want := "[1 2 3 4 5 6 gap 7-7 8 9 10]"; fmt.Sprint(got) != want {
		t.Fatalf("delivered offsets %v, want %s", got, want)
	}
	st := h.Stats()
	if st.Gaps.Load() != 2 || st.GapsFilled.Load() != 3 || st.GapsLost.Load() != 1 || st.Duplicates.Load() != 2 || st.GapNotices.Load() != 1 {
		t.Fatalf("gaps %d filled %d lost %d duplicates %d", st.Gaps.Load(), st.GapsFilled.Load(), st.GapsLost.Load(), st.Duplicates.Load())
	}
}

// decodeFrames decodes msgpack frames (server frames: 2-byte header for
// these small payloads) into maps.
func decodeFrames(t *testing.T, frames [][]byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, f := range frames {
		var m map[string]any
		if err := msgpack.Unmarshal(f[2:], &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// waitFrames waits until sub has n frames (or 5 s pass).
func waitFrames(sub *fakeSub, n int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		sub.mu.Lock()
		got := len(sub.frames)
		sub.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEventsReachSubscribers: join/leave events are framed as pushes once
// per encoding, shared by the subscribers of that encoding, reach only the
// channel's subscribers, and keep their place among the publications.
func TestEventsReachSubscribers(t *testing.T) {
	h := New(Config{}, &nopBroker{})
	h.Start()
	a, b, j := &fakeSub{enc: codec.Msgpack}, &fakeSub{enc: codec.Msgpack}, &fakeSub{enc: codec.JSON}
	other := &fakeSub{enc: codec.Msgpack}
	for _, s := range []*fakeSub{a, b, j} {
		must(t, h.Subscribe("room", s))
	}
	must(t, h.Subscribe("other", other))
	deliver := func(p *codec.Publication) {
		for !h.Deliver(p) {
		}
	}
	deliver(&codec.Publication{Channel: []byte("room"), Offset: 1, Epoch: []byte("e"), Data: []byte("1")})
	deliver(&codec.Publication{Channel: []byte("room"), Kind: codec.KindJoin, Client: []byte("c-9"), User: []byte("42")})
	deliver(&codec.Publication{Channel: []byte("room"), Offset: 2, Epoch: []byte("e"), Data: []byte("2")})
	deliver(&codec.Publication{Channel: []byte("room"), Kind: codec.KindLeave, Client: []byte("c-9")})
	h.Close()
	for _, s := range []*fakeSub{a, b, j} {
		if len(s.frames) != 4 {
			t.Fatalf("subscriber got %d frames, want 4", len(s.frames))
		}
	}
	if &a.frames[1][0] != &b.frames[1][0] || &a.frames[3][0] != &b.frames[3][0] {
		t.Fatal("event frames not shared between msgpack subscribers")
	}
	got := fmt.Sprint(decodeFrames(t, a.frames))
	want := "[map[channel:room data:[49] epoch:e offset:1 type:message] map[channel:room client:c-9 type:join user:42] " +
		"map[channel:room data:[50] epoch:e offset:2 type:message] map[channel:room client:c-9 type:leave user:]]"
	if got != want {
		t.Fatalf("msgpack frames\n got  %s\n want %s", got, want)
	}
	if got, want := string(j.frames[1][2:]), `{"type":"join","channel":"room","client":"c-9","user":"42"}`; got != want {
		t.Fatalf("JSON join frame %s, want %s", got, want)
	}
	if got, want := string(j.frames[3][2:]), `{"type":"leave","channel":"room","client":"c-9","user":""}`; got != want {
		t.Fatalf("JSON leave frame %s, want %s", got, want)
	}
	if len(other.frames) != 0 {
		t.Fatalf("other channel's subscriber got %d frames", len(other.frames))
	}
	st := h.Stats()
	if st.Events.Load() != 6 || st.Delivered.Load() != 6 || st.Gaps.Load() != 0 || st.Duplicates.Load() != 0 {
		t.Fatalf("events %d delivered %d gaps %d duplicates %d", st.Events.Load(), st.Delivered.Load(), st.Gaps.Load(), st.Duplicates.Load())
	}
}

// TestEventsBypassOffsets: events carry no offset (or a stray one), so
// they must not count as duplicates, start or end a gap fill, move the
// channel's last offset, or wait behind a fill in progress.
func TestEventsBypassOffsets(t *testing.T) {
	b := &slowHistoryBroker{historyBroker: historyBroker{epoch: "e1", entries: map[uint64]string{3: "3"}}, release: make(chan struct{})}
	h := New(Config{}, b)
	h.Start()
	sub := &fakeSub{enc: codec.Msgpack}
	must(t, h.Subscribe("c", sub))
	pub := func(off uint64) {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: off, Epoch: []byte("e1"), Data: []byte(fmt.Sprint(off))}) {
		}
	}
	event := func(kind codec.Kind, off uint64, epoch string) {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Kind: kind, Client: []byte("x"), Offset: off, Epoch: []byte(epoch)}) {
		}
	}
	pub(1)
	pub(2)
	event(codec.KindJoin, 0, "")     // would be a duplicate (0 ≤ 2) if admitted
	event(codec.KindLeave, 1, "e1")  // would be a duplicate
	event(codec.KindJoin, 50, "e1")  // would be a gap (50 > 3)
	event(codec.KindLeave, 7, "new") // would restart the count in a new epoch
	pub(4)                           // a real gap: 3 is filled from history
	event(codec.KindJoin, 0, "")     // delivered at once, not held behind the fill
	waitFrames(sub, 7)
	sub.mu.Lock()
	n := len(sub.frames)
	sub.mu.Unlock()
	if n != 7 {
		t.Fatalf("%d frames before the fill completed, want 7 (2 publications, 5 events)", n)
	}
	close(b.release) // the fill completes: 3, then the held 4
	pub(5)
	waitFrames(sub, 10)
	h.Close()
	var got []string
	for _, m := range decodeFrames(t, sub.frames) {
		if m["type"] == "message" {
			got = append(got, fmt.Sprint(m["offset"]))
		} else {
			got = append(got, fmt.Sprint(m["type"]))
		}
	}
	if want := "[1 2 join leave join leave join 3 4 5]"; fmt.Sprint(got) != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
	st := h.Stats()
	if st.Gaps.Load() != 1 || st.GapsFilled.Load() != 1 || st.GapsLost.Load() != 0 || st.Duplicates.Load() != 0 || st.Events.Load() != 5 {
		t.Fatalf("gaps %d filled %d lost %d duplicates %d events %d",
			st.Gaps.Load(), st.GapsFilled.Load(), st.GapsLost.Load(), st.Duplicates.Load(), st.Events.Load())
	}
}

// slowHistoryBroker answers History only once release is closed.
type slowHistoryBroker struct {
	historyBroker
	release chan struct{}
}

func (b *slowHistoryBroker) History(ch string, q broker.HistoryQuery, done func(broker.HistoryResult, error)) {
	go func() {
		<-b.release
		b.historyBroker.History(ch, q, done)
	}()
}

// TestGapFillGivenUp: when a fill takes longer than maxHeld publications,
// the gap is declared lost (one gap push), held publications are delivered
// in order, and the fill's late answer changes nothing.
func TestGapFillGivenUp(t *testing.T) {
	b := &slowHistoryBroker{historyBroker: historyBroker{epoch: "e1", entries: map[uint64]string{2: "late"}}, release: make(chan struct{})}
	h := New(Config{}, b)
	h.Start()
	sub := &fakeSub{enc: codec.Msgpack}
	must(t, h.Subscribe("c", sub))
	pub := func(off uint64) {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: off, Epoch: []byte("e1")}) {
			time.Sleep(time.Millisecond)
		}
	}
	pub(1)
	last := uint64(3 + maxHeld) // 2 is missing; 3.. are held until the give-up
	for off := uint64(3); off <= last; off++ {
		pub(off)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sub.mu.Lock()
		n := len(sub.frames)
		sub.mu.Unlock()
		if n >= int(last) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(b.release) // the late answer must be ignored
	time.Sleep(50 * time.Millisecond)
	h.Close()
	var offsets []uint64
	gaps := 0
	for _, f := range sub.frames {
		hdr := 2
		if f[1]&0x7F == 126 {
			hdr = 4
		}
		var m map[string]any
		if err := msgpack.Unmarshal(f[hdr:], &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "gap" {
			gaps++
			continue
		}
		var off uint64
		fmt.Sscan(fmt.Sprint(m["offset"]), &off)
		offsets = append(offsets, off)
	}
	if gaps != 1 || len(offsets) != int(last)-1 {
		t.Fatalf("%d gap pushes, %d messages (want 1 and %d)", gaps, len(offsets), last-1)
	}
	for i, off := range offsets[1:] {
		if off != uint64(i)+3 {
			t.Fatalf("message %d has offset %d, want %d", i+1, off, i+3)
		}
	}
}

// pushes renders a subscriber's frames as short strings: "e1:3" for the
// message of offset 3 in epoch e1, "gap 4-5", "epoch e1:3>e2".
func pushes(t *testing.T, sub *fakeSub) []string {
	t.Helper()
	sub.mu.Lock()
	frames := append([][]byte(nil), sub.frames...)
	sub.mu.Unlock()
	var out []string
	for _, m := range decodeFrames(t, frames) {
		switch m["type"] {
		case "gap":
			out = append(out, fmt.Sprintf("gap %v-%v", m["from"], m["to"]))
		case "epoch":
			out = append(out, fmt.Sprintf("epoch %v:%v>%v", m["previous"], m["offset"], m["epoch"]))
		default:
			out = append(out, fmt.Sprintf("%v:%v", m["epoch"], m["offset"]))
		}
	}
	return out
}

func deliverAll(h *Hub, epoch string, offsets ...uint64) {
	for _, off := range offsets {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: off, Epoch: []byte(epoch), Data: []byte(fmt.Sprint(off))}) {
		}
	}
}

func expectPushes(t *testing.T, sub *fakeSub, want string) {
	t.Helper()
	// One frame per push; "gap a-b" and "epoch x>y" are two words each.
	n := len(strings.Fields(want)) - strings.Count(want, "gap ") - strings.Count(want, "epoch ")
	waitFrames(sub, n)
	time.Sleep(20 * time.Millisecond) // nothing more may come
	if got := strings.Join(pushes(t, sub), " "); got != want {
		t.Fatalf("pushes\n got  %s\n want %s", got, want)
	}
}

// historyHub starts a hub over a historyBroker (with no history until
// set) and subscribes one MessagePack subscriber to channel "c". The hub is
// closed at cleanup.
func historyHub(t *testing.T) (*Hub, *historyBroker, *fakeSub) {
	t.Helper()
	b := &historyBroker{}
	h := New(Config{}, b)
	h.Start()
	t.Cleanup(h.Close)
	sub := &fakeSub{enc: codec.Msgpack}
	must(t, h.Subscribe("c", sub))
	return h, b, sub
}

// TestHistoryRepairs: the hub delivered epoch e1's first publications,
// then the broker's history changed behind its back; the next publication
// (or a Resync) reveals it, and the subscriber gets what it missed, in
// order, from history.
func TestHistoryRepairs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delivered []uint64          // e1's publications delivered first
		epoch     string            // the broker's epoch then…
		history   map[uint64]string // …and its history
		resync    bool              // h.Resync before more are delivered
		then      []uint64          // delivered next, in epoch
		want      string            // the pushes (see pushes)

		epochChanges, resyncs int64
	}{{
		// A publication of a new epoch (the broker restarted without its
		// history) is preceded by an epoch push and by the new epoch's
		// earlier publications, from history, so none of the new epoch is
		// skipped.
		name: "EpochChangeIsAnnouncedAndFilled", delivered: []uint64{1, 2, 3},
		epoch: "e2", history: map[uint64]string{2: "2", 3: "3", 4: "4"}, // 1 already gone
		then: []uint64{4, 5},
		want: "e1:1 e1:2 e1:3 epoch e1:3>e2 gap 1-1 e2:2 e2:3 e2:4 e2:5", epochChanges: 1,
	}, {
		// After the broker's subscription lapsed, Resync delivers from
		// history what was published meanwhile, even with no later
		// publication to reveal the gap; live ones wait and are not doubled.
		name: "ResyncFillsWhatWasMissed", delivered: []uint64{1, 2},
		epoch: "e1", history: map[uint64]string{1: "1", 2: "2", 3: "3", 4: "4"},
		resync: true, then: []uint64{4, 5},
		want: "e1:1 e1:2 e1:3 e1:4 e1:5", resyncs: 1,
	}, {
		// The broker restarted without persistence while the subscription
		// lapsed: the resync announces the new epoch and delivers it from
		// its beginning.
		name: "ResyncAcrossEpochChange", delivered: []uint64{1, 2, 3},
		epoch: "e2", history: map[uint64]string{1: "1", 2: "2"},
		resync: true, then: []uint64{2, 3},
		want: "e1:1 e1:2 e1:3 epoch e1:3>e2 e2:1 e2:2 e2:3", epochChanges: 1, resyncs: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h, b, sub := historyHub(t)
			deliverAll(h, "e1", tc.delivered...)
			waitFrames(sub, len(tc.delivered)) // a repair compares with what was delivered
			b.set(tc.epoch, 0, tc.history)
			if tc.resync {
				h.Resync("c")
			}
			deliverAll(h, tc.epoch, tc.then...)
			expectPushes(t, sub, tc.want)
			st := h.Stats()
			if n, m := st.EpochChanges.Load(), st.Resyncs.Load(); n != tc.epochChanges || m != tc.resyncs {
				t.Fatalf("epoch changes %d, resyncs %d; want %d, %d", n, m, tc.epochChanges, tc.resyncs)
			}
		})
	}
}

// TestObservedPositionRevealsEpochChange: a subscriber told epoch e1 at
// offset 5 before anything was delivered still gets the epoch push when
// the channel's next publication is of another epoch.
func TestObservedPositionRevealsEpochChange(t *testing.T) {
	h, b, sub := historyHub(t)
	h.Observe("c", broker.Position{Epoch: "e1", Offset: 5})
	h.Observe("c", broker.Position{Epoch: "e1", Offset: 7}) // a later subscriber: the lower top stands
	b.set("e1", 0, map[uint64]string{6: "6", 7: "7"})
	deliverAll(h, "e1", 8)
	waitFrames(sub, 3)
	b.set("e2", 0, map[uint64]string{1: "1"})
	deliverAll(h, "e2", 2)
	expectPushes(t, sub, "e1:6 e1:7 e1:8 epoch e1:8>e2 e2:1 e2:2")
}

// TestQueueBudget: publications are refused once the shared byte budget is
// spent (one hot channel may use all of it), Congested says so at half,
// and the budget is given back as the workers deliver.
func TestQueueBudget(t *testing.T) {
	h := New(Config{QueueBytes: 100 * 1024}, &nopBroker{}) // not started: nothing is taken
	p := func(i int) *codec.Publication {
		return &codec.Publication{Channel: []byte("hot"), Offset: uint64(i + 1), Epoch: []byte("e"), Data: make([]byte, 860)} // costs 1 KiB with the envelope
	}
	accepted := 0
	for i := 0; h.Deliver(p(i)); i++ {
		accepted++
		if accepted == 51 && !h.Congested() {
			t.Fatal("not congested past half the budget")
		}
	}
	if accepted != 100 || h.Stats().Dropped.Load() != 1 {
		t.Fatalf("accepted %d (dropped %d), want 100 of 1 KiB each in 100 KiB", accepted, h.Stats().Dropped.Load())
	}
	h.Start()
	defer h.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.Stats().Queued.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if h.Congested() || !h.Deliver(p(200)) {
		t.Fatalf("budget not given back: %d bytes queued", h.Stats().Queued.Load())
	}
}
