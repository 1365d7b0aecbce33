package hub

import (
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
