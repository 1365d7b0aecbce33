package hub

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/codec"
)

// TestBurstIsOneRunAndOneFlush: a burst of one channel's publications that
// is queued before the worker looks reaches each subscriber as one run (one
// Enqueue call) and one flush, in order.
func TestBurstIsOneRunAndOneFlush(t *testing.T) {
	h := New(Config{Shards: 1}, &nopBroker{})
	subs := []*fakeSub{{enc: codec.Msgpack}, {enc: codec.JSON}}
	for _, s := range subs {
		must(t, h.Subscribe("c", s))
	}
	deliverAll(h, "e", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
	h.Start()
	h.Close()
	for i, s := range subs {
		if len(s.frames) != 20 || s.runs != 1 || s.flushes != 1 {
			t.Fatalf("subscriber %d: %d frames in %d runs and %d flushes, want 20 in 1 and 1", i, len(s.frames), s.runs, s.flushes)
		}
	}
	got := pushes(t, subs[0])
	for i, p := range got {
		if p != fmt.Sprintf("e:%d", i+1) {
			t.Fatalf("push %d is %s: out of order", i, p)
		}
	}
}

// arrivalSub is a fakeSub whose first flush, of all of them, runs arrive:
// the rest of a burst reaching the hub while the worker flushes its head.
type arrivalSub struct {
	*fakeSub
	once   *sync.Once
	arrive func()
}

func (s *arrivalSub) Flush() {
	s.fakeSub.Flush()
	s.once.Do(s.arrive)
}

// TestBurstArrivingDuringFlushIsOneWrite: a burst whose head is delivered
// alone and whose rest arrives while the head is being flushed still
// reaches the subscribers not yet flushed in one flush of the whole burst;
// at most the yieldCheckEvery flushed before the worker looked get two.
func TestBurstArrivingDuringFlushIsOneWrite(t *testing.T) {
	h := New(Config{Shards: 1}, &nopBroker{})
	var once sync.Once
	rest := func() { deliverAll(h, "e", 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20) }
	subs := make([]*fakeSub, 1000)
	for i := range subs {
		subs[i] = &fakeSub{enc: codec.Msgpack}
		must(t, h.Subscribe("c", &arrivalSub{subs[i], &once, rest}))
	}
	deliverAll(h, "e", 1)
	h.Start()
	for _, s := range subs {
		waitFrames(s, 20)
	}
	h.Close()
	twice := 0
	for i, s := range subs {
		s.mu.Lock()
		flushes := s.flushes
		s.mu.Unlock()
		if flushes > 1 {
			twice++
		}
		if got := strings.Join(pushes(t, s), " "); got != strings.Join(burstPushes(20), " ") {
			t.Fatalf("subscriber %d got %s", i, got)
		}
	}
	if twice > yieldCheckEvery {
		t.Fatalf("%d of %d subscribers were flushed twice for one burst, want ≤ %d", twice, len(subs), yieldCheckEvery)
	}
}

func burstPushes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("e:%d", i+1)
	}
	return out
}

// boundedSub records the most bytes it held between two flushes.
type boundedSub struct {
	mu      sync.Mutex
	pending int
	most    int
	frames  int
}

func (s *boundedSub) Encoding() codec.Encoding { return codec.Msgpack }
func (s *boundedSub) Enqueue(_ []*codec.Publication, frames [][]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.pending == 0
	for _, f := range frames {
		s.pending += len(f)
		s.frames++
	}
	s.most = max(s.most, s.pending)
	return first
}
func (s *boundedSub) Flush() {
	s.mu.Lock()
	s.pending = 0
	s.mu.Unlock()
}

// TestLargeBurstIsFlushedAsItGoes: a burst of large publications is
// flushed every flushBytes, so a healthy subscriber never holds a whole
// batch (64 × 64 KB would pass a 1 MiB queue limit) waiting for one flush.
func TestLargeBurstIsFlushedAsItGoes(t *testing.T) {
	h := New(Config{Shards: 1}, &nopBroker{})
	sub := &boundedSub{}
	must(t, h.Subscribe("big", sub))
	const n, size = 64, 64 << 10
	for i := 1; i <= n; i++ {
		for !h.Deliver(&codec.Publication{Channel: []byte("big"), Offset: uint64(i), Epoch: []byte("e"), Data: make([]byte, size)}) {
		}
	}
	h.Start()
	h.Close()
	if sub.frames != n {
		t.Fatalf("got %d frames, want %d", sub.frames, n)
	}
	if limit := flushBytes + size + 64; sub.most > limit {
		t.Fatalf("subscriber held %d bytes between flushes, want ≤ %d", sub.most, limit)
	}
}

// TestRunsKeepOrderThroughRepairs: interleaved channels, duplicates and a
// gap in one burst: runs break where admit must judge, the gap is filled
// from history, and each channel's subscribers see their channel exactly
// once and in order.
func TestRunsKeepOrderThroughRepairs(t *testing.T) {
	b := &historyBroker{epoch: "e1", entries: map[uint64]string{3: "3", 4: "4", 8: "8"}}
	h := New(Config{Shards: 1}, b)
	c, d := &fakeSub{enc: codec.Msgpack}, &fakeSub{enc: codec.Msgpack}
	must(t, h.Subscribe("c", c))
	must(t, h.Subscribe("d", d))
	pub := func(ch string, off uint64) {
		for !h.Deliver(&codec.Publication{Channel: []byte(ch), Offset: off, Epoch: []byte("e1"), Data: []byte(fmt.Sprint(off))}) {
		}
	}
	cOffsets := []uint64{1, 2, 5, 6, 6, 2, 9, 10} // 3,4 in history; 7 lost; 8 in history
	for i, off := range cOffsets {
		pub("c", off)
		pub("d", uint64(2*i+1))
		pub("d", uint64(2*i+2))
	}
	h.Start()
	waitFrames(c, 10) // 9 publications and a gap notice
	if got, want := strings.Join(pushes(t, c), " "), "e1:1 e1:2 e1:3 e1:4 e1:5 e1:6 gap 7-7 e1:8 e1:9 e1:10"; got != want {
		t.Fatalf("channel c got %s, want %s", got, want)
	}
	var want []string
	for i := 1; i <= 2*len(cOffsets); i++ {
		want = append(want, fmt.Sprintf("e1:%d", i))
	}
	expectPushes(t, d, strings.Join(want, " "))
	h.Close()
}

// BenchmarkDeliverBurst10k measures a burst of 20 publications of one
// channel to 10,000 local subscribers: one run, one flush.
func BenchmarkDeliverBurst10k(b *testing.B) {
	h := New(Config{}, &nopBroker{})
	for range 10000 {
		must2(b, h.Subscribe("c", &countSub{}))
	}
	w := worker{shard: h.shard("c")}
	batch := make([]*codec.Publication, 20)
	for i := range batch {
		batch[i] = &codec.Publication{Channel: []byte("c"), Data: make([]byte, 64)}
	}
	var next uint64
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range batch {
			next++
			p.Offset = next
		}
		w.deliverBatch(batch)
		w.flush()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(10000*len(batch)), "ns/delivery")
}
