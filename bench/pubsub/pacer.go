package pubsub

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// paceEvery is how often the pacer recomputes the slowest reader, and how
// long a paced publisher waits before looking again.
const paceEvery = time.Millisecond

// pacer is optional end-to-end flow control (Config.MaxLag): a publisher
// may not send on a channel while the channel's publications outrun its
// slowest open reader by MaxLag or more.
//
// Why a checker needs it: wsgate acknowledges a publish once the hub has
// queued it, not once subscribers have it, so publishers alone can run up
// to a full hub queue (4096 publications) ahead of every reader. A reader
// that falls 1 MiB behind — a client process briefly short of CPU on a
// shared 2-core box is enough — is then closed as a slow consumer, and the
// run would measure the client's scheduling instead of the gateway. With a
// lag bound, readers are never more than MaxLag publications behind, while
// non-readers (not counted) still fall behind without limit.
type pacer struct {
	maxLag uint64
	sent   []atomic.Uint64 // by channel: publishes sent and not refused
	floor  []atomic.Uint64 // by channel: fewest received by an open reader
}

func newPacer(maxLag, channels int) *pacer {
	if maxLag <= 0 {
		return nil
	}
	return &pacer{maxLag: uint64(maxLag), sent: make([]atomic.Uint64, channels), floor: make([]atomic.Uint64, channels)}
}

// allow reports whether one more publication on ch may be sent now. A nil
// pacer allows everything.
func (p *pacer) allow(ch int) bool {
	return p == nil || p.sent[ch].Load() < p.floor[ch].Load()+p.maxLag
}

func (p *pacer) sentOne(ch int) {
	if p != nil {
		p.sent[ch].Add(1)
	}
}

// refused takes back a publish the gateway answered with 107.
func (p *pacer) refused(ch int) {
	if p != nil {
		p.sent[ch].Add(^uint64(0))
	}
}

// run recomputes the floors every paceEvery until ctx ends. When a reader
// stops receiving, its channel's floor stops and the pacer would hold the
// publishers until the run's timeout; instead, after stall without any
// floor moving while a channel is held, it calls giveUp (once) so the run
// goes on to count what is missing.
func (p *pacer) run(ctx context.Context, subs []*subscriber, stall time.Duration, giveUp func(string)) {
	if p == nil {
		return
	}
	mins := make([]uint64, len(p.floor))
	t := time.NewTicker(paceEvery)
	defer t.Stop()
	var lastSum uint64
	lastMove := time.Now()
	for {
		sum := p.update(subs, mins)
		if sum != lastSum || !p.holding() {
			lastSum, lastMove = sum, time.Now()
		} else if time.Since(lastMove) > stall {
			giveUp(fmt.Sprintf("publishers held for %v by --max-lag: the slowest reader of a channel received nothing meanwhile", stall))
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// update sets each channel's floor (a channel without open readers is not
// held back at all) and returns the floors' sum, which grows with any
// progress.
func (p *pacer) update(subs []*subscriber, mins []uint64) (sum uint64) {
	for i := range mins {
		mins[i] = math.MaxUint64 / 2
	}
	for _, s := range subs {
		if s.closeCode.Load() == 0 {
			mins[s.channel] = min(mins[s.channel], s.received.Load())
		}
	}
	for i, m := range mins {
		p.floor[i].Store(m)
		sum += m
	}
	return sum
}

// holding reports whether some channel is at its lag limit.
func (p *pacer) holding() bool {
	for ch := range p.floor {
		if !p.allow(ch) {
			return true
		}
	}
	return false
}
