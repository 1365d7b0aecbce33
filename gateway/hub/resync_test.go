package hub

import (
	"errors"
	"testing"
	"time"
)

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
