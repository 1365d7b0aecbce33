package hub

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

// offsetSub records the offsets it is given and, as its first entry, the
// position SubscribeAt answered with.
type offsetSub struct {
	mu      sync.Mutex
	at      *broker.Position
	offsets []uint64
	early   int // publications enqueued before the position was given
}

func (s *offsetSub) Encoding() codec.Encoding { return codec.Msgpack }
func (s *offsetSub) Enqueue(pubs []*codec.Publication, _ [][]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pubs {
		if s.at == nil {
			s.early++
		}
		s.offsets = append(s.offsets, p.Offset)
	}
	return false
}
func (s *offsetSub) Flush() {}

func (s *offsetSub) answer(pos broker.Position) {
	s.mu.Lock()
	s.at = &pos
	s.mu.Unlock()
}

// got renders the offsets given so far.
func (s *offsetSub) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.offsets)
}

func (s *offsetSub) last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.offsets) == 0 {
		return 0
	}
	return s.offsets[len(s.offsets)-1]
}

// TestSubscribeAtKnownPosition: a channel new on the instance has no
// position to give; once something was delivered the hub answers with the
// last offset delivered, and not while a repair runs.
func TestSubscribeAtKnownPosition(t *testing.T) {
	b := &slowHistoryBroker{historyBroker: historyBroker{epoch: "e1", entries: map[uint64]string{4: "4"}}, release: make(chan struct{})}
	h := New(Config{}, b)
	h.Start()
	defer h.Close()
	first := &offsetSub{}
	known, err := h.SubscribeAt("c", first, first.answer)
	if err != nil || known || first.at != nil {
		t.Fatalf("new channel: known %v, err %v, answered %v", known, err, first.at)
	}
	pub := func(off uint64) {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: off, Epoch: []byte("e1")}) {
			time.Sleep(time.Millisecond)
		}
	}
	for off := uint64(1); off <= 3; off++ {
		pub(off)
	}
	waitFor(t, func() bool { return first.last() == 3 })
	second := &offsetSub{}
	if known, err := h.SubscribeAt("c", second, second.answer); err != nil || !known || *second.at != (broker.Position{Epoch: "e1", Offset: 3}) {
		t.Fatalf("after delivery: known %v, err %v, position %+v", known, err, second.at)
	}
	if known, err := h.SubscribeAt("c", second, second.answer); err != ErrAlreadySubscribed || known {
		t.Fatalf("duplicate: known %v, err %v", known, err)
	}

	pub(5) // 4 is missing: a fill starts and holds 5 back
	waitFor(t, func() bool { return h.Stats().Gaps.Load() == 1 })
	third := &offsetSub{}
	if known, err := h.SubscribeAt("c", third, third.answer); err != nil || known || third.at != nil {
		t.Fatalf("during a repair: known %v, err %v, position %+v", known, err, third.at)
	}
	close(b.release)
	waitFor(t, func() bool { return third.last() == 5 })
	if got := fmt.Sprint(third.offsets); got != "[4 5]" {
		t.Fatalf("subscriber during the repair got %s, want [4 5]", got)
	}
	if n := h.Stats().PositionsKnown.Load(); n != 1 {
		t.Fatalf("PositionsKnown %d, want 1", n)
	}
}

// TestSubscribeAtNeverMissesOrRepeats: subscribers joining while
// publications stream in are answered with a position and then get
// exactly the offsets after it, in order, none before the answer.
func TestSubscribeAtNeverMissesOrRepeats(t *testing.T) {
	h := New(Config{}, &nopBroker{})
	h.Start()
	defer h.Close()
	anchor := &offsetSub{}
	must(t, h.Subscribe("c", anchor))
	const n = 20000
	deliver := func(off uint64) {
		for !h.Deliver(&codec.Publication{Channel: []byte("c"), Offset: off, Epoch: []byte("e1")}) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	deliver(1)
	waitFor(t, func() bool { return anchor.last() == 1 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for off := uint64(2); off <= n; off++ {
			deliver(off)
		}
	}()
	var subs []*offsetSub
	for range 200 {
		s := &offsetSub{}
		if known, err := h.SubscribeAt("c", s, s.answer); err != nil || !known {
			t.Fatalf("known %v, err %v", known, err)
		}
		subs = append(subs, s)
		time.Sleep(50 * time.Microsecond)
	}
	<-done
	waitFor(t, func() bool { return anchor.last() == n })
	for i, s := range subs {
		waitFor(t, func() bool { return s.last() == n || s.at.Offset == n })
		s.mu.Lock()
		if s.early != 0 {
			t.Fatalf("subscriber %d got %d publications before its position", i, s.early)
		}
		for j, off := range s.offsets {
			if want := s.at.Offset + 1 + uint64(j); off != want {
				t.Fatalf("subscriber %d answered at %d: entry %d is offset %d, want %d", i, s.at.Offset, j, off, want)
			}
		}
		s.mu.Unlock()
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
	}
}

// TestObservedPositionDropsNothing: the positions subscribers were told
// reach Observe in no fixed order (each comes from its own broker read).
// With a and b waiting for their answers, b's 12 is observed first and 11,
// 12 arrive; a is then told 10, so both must reach it, on a channel where
// nothing follows them. (They were dropped as duplicates of the observed
// 12: a missed them without a word.) Delivery goes on from them: 13 is not
// preceded by a second copy.
func TestObservedPositionDropsNothing(t *testing.T) {
	h := New(Config{}, &historyBroker{epoch: "e1", entries: map[uint64]string{11: "11", 12: "12"}})
	h.Start()
	defer h.Close()
	a, b := &offsetSub{}, &offsetSub{}
	for _, s := range []*offsetSub{a, b} {
		if known, err := h.SubscribeAt("c", s, s.answer); err != nil || known {
			t.Fatalf("new channel: known %v, err %v", known, err)
		}
	}
	h.Observe("c", broker.Position{Epoch: "e1", Offset: 12}) // b's answer
	deliverAll(h, "e1", 11, 12)
	waitFor(t, func() bool { return b.last() == 12 || h.Stats().Duplicates.Load() == 2 })
	h.Observe("c", broker.Position{Epoch: "e1", Offset: 10}) // a's answer, later
	for deadline := time.Now().Add(time.Second); a.last() != 12 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if a.last() != 12 {
		t.Fatalf("a, told 10, got %s (%d duplicates dropped), want [11 12]", a.got(), h.Stats().Duplicates.Load())
	}
	deliverAll(h, "e1", 13)
	waitFor(t, func() bool { return a.last() == 13 })
	if got := a.got(); got != "[11 12 13]" || h.Stats().Duplicates.Load() != 0 {
		t.Fatalf("a got %s with %d duplicates dropped, want [11 12 13] and none", got, h.Stats().Duplicates.Load())
	}
}

// TestObservedPositionDropsNothingHeld: the same, for publications held
// while a resync read history: its read failed, and the held 11 and 12,
// covered by the observed 12 only, were dropped on release.
func TestObservedPositionDropsNothingHeld(t *testing.T) {
	b := &gatedHistoryBroker{historyBroker: historyBroker{epoch: "e1", entries: map[uint64]string{11: "11", 12: "12"}}, answers: make(chan error)}
	h := New(Config{}, b)
	h.Start()
	defer h.Close()
	defer close(b.answers) // reads still waiting (a retry's) go on
	a, other := &offsetSub{}, &offsetSub{}
	for _, s := range []*offsetSub{a, other} {
		if _, err := h.SubscribeAt("c", s, s.answer); err != nil {
			t.Fatal(err)
		}
	}
	h.Observe("c", broker.Position{Epoch: "e1", Offset: 12}) // other's answer
	h.Resync("c")
	waitFor(t, func() bool { return h.Stats().Resyncs.Load() == 1 })
	deliverAll(h, "e1", 11, 12)
	waitFor(t, func() bool { return h.Stats().Queued.Load() == 0 }) // held
	b.answers <- errors.New("history unreachable")
	waitFor(t, func() bool { return other.last() == 12 || h.Stats().Duplicates.Load() == 2 })
	h.Observe("c", broker.Position{Epoch: "e1", Offset: 10}) // a's answer, once the held ones are released
	for deadline := time.Now().Add(time.Second); a.last() != 12 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := a.got(); got != "[11 12]" {
		t.Fatalf("a, told 10, got %s (%d duplicates dropped), want [11 12]", got, h.Stats().Duplicates.Load())
	}
}

// gatedHistoryBroker answers each History call once the test sends it an
// error (it fails) or nil (it reads its history); closing answers lets
// every read go on.
type gatedHistoryBroker struct {
	historyBroker
	answers chan error
}

func (b *gatedHistoryBroker) History(ch string, q broker.HistoryQuery, done func(broker.HistoryResult, error)) {
	go func() {
		if err := <-b.answers; err != nil {
			done(broker.HistoryResult{}, err)
			return
		}
		b.historyBroker.History(ch, q, done)
	}()
}
