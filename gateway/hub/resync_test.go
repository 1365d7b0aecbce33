package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

// TestResyncWaitsForQueuedPublications: a resync asked for while the
// channel's publications are still queued (a broker gives up on the one
// after them, which the full hub refused) starts once they are delivered:
// history, which keeps only 3 and 4, is read after 3. (It overtook them:
// 2 was announced lost, and the queued 2 and 3 were dropped as
// duplicates of what history delivered.)
func TestResyncWaitsForQueuedPublications(t *testing.T) {
	h := New(Config{}, &historyBroker{epoch: "e1", entries: map[uint64]string{3: "3", 4: "4"}}) // not started: everything waits
	defer h.Close()
	sub := &fakeSub{enc: codec.Msgpack}
	must(t, h.Subscribe("c", sub))
	h.Observe("c", broker.Position{Epoch: "e1", Offset: 1})
	deliverAll(h, "e1", 2, 3)
	h.Resync("c")
	h.Start()
	expectPushes(t, sub, "e1:2 e1:3 e1:4")
}

// TestFailedResyncIsRetried: a resync whose history read fails is tried
// again after a backoff, so the subscriber gets what the lapse missed with
// nothing published after it. (A failed read was given up on: 3 and 4
// waited for a later publication to reveal them.)
func TestFailedResyncIsRetried(t *testing.T) {
	b := &gatedHistoryBroker{answers: make(chan error)}
	h := New(Config{}, b)
	h.Start()
	defer h.Close()
	defer close(b.answers)
	sub := &offsetSub{}
	must(t, h.Subscribe("c", sub))
	deliverAll(h, "e1", 1, 2)
	waitFor(t, func() bool { return sub.last() == 2 })
	b.set("e1", 0, map[uint64]string{1: "1", 2: "2", 3: "3", 4: "4"}) // 3 and 4 published during a lapse
	h.Resync("c")
	for i, answer := range []error{errors.New("unreachable"), errors.New("unreachable"), nil} {
		select {
		case b.answers <- answer:
		case <-time.After(2 * time.Second):
			t.Fatalf("history read %d never came: the resync was not tried again", i+1)
		}
	}
	waitFor(t, func() bool { return sub.last() == 4 })
	if got, n := sub.got(), h.Stats().ResyncRetries.Load(); got != "[1 2 3 4]" || n != 2 {
		t.Fatalf("got %s after %d retries, want [1 2 3 4] after 2", got, n)
	}
}
