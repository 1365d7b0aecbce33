package pubsub

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
)

func TestPayloadRoundTrip(t *testing.T) {
	b := newPayload(64)
	want := header{publisher: 9, channel: 4, seq: 1 << 40, sentNanos: time.Now().UnixNano()}
	want.put(b)
	if got, ok := parsePayload(b, 64); !ok || got != want {
		t.Fatalf("parsed %+v %v, want %+v", got, ok, want)
	}
	if _, ok := parsePayload(b[:63], 64); ok {
		t.Error("short payload accepted")
	}
	b[63]++
	if _, ok := parsePayload(b, 64); ok {
		t.Error("damaged padding accepted")
	}
	if pubHash(1, 2) == pubHash(2, 1) || pubHash(0, 1) == pubHash(0, 2) {
		t.Error("pubHash collides on neighbours")
	}
}

func TestHistogram(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<20; us += 1 + us/50 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d", us, b, prev)
		}
		prev = b
		if mid := bucketMid(b); mid < float64(us)*0.93 || mid > float64(us)*1.07+1 {
			t.Fatalf("bucket %d of %d µs has midpoint %.1f", b, us, mid)
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(i, time.Duration(i)*time.Millisecond)
	}
	s := h.summary()
	near := func(got, want float64) bool { return got > want*0.93 && got < want*1.07 }
	if !near(s.P50, 500) || !near(s.P99, 990) || !near(s.P999, 999) || s.Max != 1000 {
		t.Fatalf("summary %+v", s)
	}
}

// feeder builds the frames one subscriber would receive.
type feeder struct {
	t   *testing.T
	s   *subscriber
	enc codec.Encoding
}

func newFeeder(t *testing.T, enc codec.Encoding) *feeder {
	sh := &shared{size: PayloadHeader + 8, publishers: 2, names: [][]byte{[]byte("check:0"), []byte("check:1")},
		subscribes: newCountdown(1)}
	return &feeder{t: t, s: newSubscriber(0, 1, enc == codec.JSON, sh), enc: enc}
}

func (f *feeder) frame(b []byte) {
	op := loadclient.OpBinary
	if f.enc == codec.JSON {
		op = loadclient.OpText
	}
	f.s.onMessage(op, b)
}

func (f *feeder) pub(channel string, offset uint64, h header) {
	p := newPayload(f.s.sh.size)
	h.sentNanos = time.Now().UnixNano()
	h.put(p)
	f.frame(codec.AppendMessage(nil, f.enc, channel, offset, "", p))
}

// TestSubscriberChecks feeds one subscriber every kind of fault.
func TestSubscriberChecks(t *testing.T) {
	for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
		f := newFeeder(t, enc)
		s := f.s
		f.frame(codec.AppendReply(nil, enc, codec.Reply{ID: subscribeID, Cmd: codec.CmdSubscribe, Offset: 10}))
		select {
		case <-s.sh.subscribes.ch:
		default:
			t.Fatal("subscribe reply not counted")
		}
		f.pub("check:1", 11, header{publisher: 0, channel: 1, seq: 1})
		f.pub("check:1", 12, header{publisher: 1, channel: 1, seq: 1})
		f.pub("check:1", 13, header{publisher: 0, channel: 1, seq: 3})
		f.pub("check:1", 14, header{publisher: 0, channel: 1, seq: 3}) // duplicate
		f.pub("check:1", 15, header{publisher: 0, channel: 1, seq: 2}) // late
		f.pub("check:1", 15, header{publisher: 1, channel: 1, seq: 5}) // offset repeated
		f.pub("check:1", 9, header{publisher: 1, channel: 1, seq: 6})  // offset before the subscribe point... and going back
		f.pub("check:0", 16, header{publisher: 1, channel: 0, seq: 7}) // not subscribed
		f.pub("check:1", 17, header{publisher: 1, channel: 0, seq: 8}) // payload of another channel
		f.pub("check:1", 18, header{publisher: 5, channel: 1, seq: 9}) // unknown publisher
		f.frame([]byte("\xc1"))                                        // garbage

		if got := s.received.Load(); got != 7 {
			t.Errorf("%s: received %d, want 7", enc, got)
		}
		if s.dups != 1 || s.outOfOrder != 1 || s.offsetViolations != 2 || s.crossChannel != 2 || s.badFrames != 2 {
			t.Errorf("%s: dups %d ooo %d offsets %d cross %d bad %d", enc, s.dups, s.outOfOrder, s.offsetViolations, s.crossChannel, s.badFrames)
		}
		want := pubHash(0, 1) + pubHash(1, 1) + pubHash(0, 3) + pubHash(0, 2) + pubHash(1, 5) + pubHash(1, 6)
		if s.hash != want {
			t.Errorf("%s: hash sum %x, want %x", enc, s.hash, want)
		}
	}
}

func TestCompareSets(t *testing.T) {
	exp := tally{count: 3, hash: 100}
	for _, c := range []struct {
		unique, hash       uint64
		missing, unexpectd uint64
	}{
		{3, 100, 0, 0},
		{2, 60, 1, 0},
		{4, 130, 0, 1},
		{3, 101, 1, 1}, // one replaced by another
	} {
		m, u := compareSets(c.unique, c.hash, exp)
		if m != c.missing || u != c.unexpectd {
			t.Errorf("compareSets(%d, %d) = %d, %d; want %d, %d", c.unique, c.hash, m, u, c.missing, c.unexpectd)
		}
	}
}

// TestPublisherReplies: accepted publishes are tallied; a 107 queues the
// publication again, pauses, halves the window; other errors end the run.
func TestPublisherReplies(t *testing.T) {
	cfg := Config{Channels: 2, Size: PayloadHeader, Mode: Burst, Window: 8}
	p := newPublisher(1, 10, &cfg, [][]byte{[]byte("a"), []byte("b")}, nil)
	p.inflight[1] = attempt{k: 0, channel: 1, seq: 1}
	p.inflight[2] = attempt{k: 1, channel: 0, seq: 2}
	p.inflight[3] = attempt{k: 2, channel: 1, seq: 3}
	if err := p.onReply(pubReply{id: 1}); err != nil {
		t.Fatal(err)
	}
	if err := p.onReply(pubReply{id: 2, code: errRateLimited}); err != nil {
		t.Fatal(err)
	}
	if p.tallies[1] != (tally{count: 1, hash: pubHash(1, 1)}) || p.accepted != 1 {
		t.Errorf("tallies %+v, accepted %d", p.tallies, p.accepted)
	}
	if len(p.retry) != 1 || p.retry[0] != 1 || p.retries != 1 || p.cwnd != 4 || !time.Now().Before(p.resumeAt) {
		t.Errorf("after a 107: retry %v, retries %d, cwnd %d, resume in %v", p.retry, p.retries, p.cwnd, time.Until(p.resumeAt))
	}
	if err := p.onReply(pubReply{id: 3, code: 111, msg: "boom"}); err == nil {
		t.Error("error 111 accepted")
	}
	if err := p.onReply(pubReply{id: 42}); err == nil {
		t.Error("reply to an unknown id accepted")
	}
}

func TestIsJSONSpreadsExactly(t *testing.T) {
	for _, c := range [][2]int{{2000, 100}, {10000, 500}, {7, 3}, {5, 5}, {5, 0}} {
		n := 0
		for i := range c[0] {
			if isJSON(i, c[0], c[1]) {
				n++
			}
		}
		if n != c[1] {
			t.Errorf("isJSON over %d picks %d, want %d", c[0], n, c[1])
		}
	}
}

// TestFillReturnsHold: when a backoff or the pacer stops fill with work
// left and nothing in flight, it must say until when, or the publisher
// would wait for a reply that never comes (the clock must not be read a
// second time to decide that).
func TestFillReturnsHold(t *testing.T) {
	cfg := Config{Channels: 1, Size: PayloadHeader, Mode: Burst, Window: 4}
	pace := newPacer(2, 1)
	p := newPublisher(0, 10, &cfg, [][]byte{[]byte("a")}, pace)

	p.resumeAt = time.Now().Add(time.Hour)
	if hold, err := p.fill(); err != nil || !hold.Equal(p.resumeAt) {
		t.Fatalf("backoff: fill returned %v, %v", hold, err)
	}

	p.resumeAt = time.Time{}
	pace.sent[0].Store(2) // floor 0, lag 2: held
	if hold, err := p.fill(); err != nil || hold.IsZero() || p.next != 0 {
		t.Fatalf("paced: fill returned %v, %v after sending %d", hold, err, p.next)
	}
}
