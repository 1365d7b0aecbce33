package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// publish runs every publisher to the end and sums up what the gateways
// accepted, per channel.
func (r *run) publish(ctx context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	var pacing sync.WaitGroup
	pacing.Go(func() {
		r.pace.run(ctx, r.subs, r.cfg.Stall, func(why string) {
			r.sh.problems.add(why)
			cancel(errors.New("readers stopped receiving"))
		})
	})
	var wg sync.WaitGroup
	for _, p := range r.pubs {
		wg.Go(func() { p.run(ctx) })
	}
	wg.Wait()
	cancel(nil)
	pacing.Wait()
	r.expected = make([]tally, r.cfg.Channels)
	for _, p := range r.pubs {
		if p.err != nil {
			r.sh.problems.add(p.err.Error())
		}
		r.res.Retries += p.retries
		for ch, t := range p.tallies {
			r.expected[ch].count += t.count
			r.expected[ch].hash += t.hash
			r.res.Publications += t.count
		}
	}
}

// resumeNonReaders lets the non-readers read again ResumeAfter from now
// and delivers how each one ended. It runs after publish: r.expected is
// final.
func (r *run) resumeNonReaders(ctx context.Context) <-chan map[string]int {
	out := make(chan map[string]int, 1)
	conns := r.nonReaders
	r.nonReaders = nil // drain closes them
	go func() {
		closes := map[string]int{}
		if len(conns) == 0 {
			out <- closes
			return
		}
		select {
		case <-time.After(r.cfg.ResumeAfter):
		case <-ctx.Done():
		}
		outcomes := make([]string, len(conns))
		want := r.expected[0].count
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() { outcomes[i] = drain(c, r.sh.names[0], want) })
		}
		wg.Wait()
		for _, o := range outcomes {
			closes[o]++
		}
		out <- closes
	}()
	return out
}

// waitDeliveries waits until every open subscriber has received as many
// publications as its channel had accepted, deliveries stall, or ctx
// ends, and returns when that was. Only the subscribers' atomics are read
// here.
func (r *run) waitDeliveries(ctx context.Context) time.Time {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last uint64
	lastProgress := time.Now()
	for {
		received, complete := r.progress()
		if complete {
			return time.Now()
		}
		if received != last {
			last, lastProgress = received, time.Now()
		} else if time.Since(lastProgress) > r.cfg.Stall {
			r.sh.problems.add(fmt.Sprintf("no delivery for %v, gave up at %d received", r.cfg.Stall, received))
			return time.Now()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			r.sh.problems.add(fmt.Sprintf("gave up waiting for deliveries at %d received: %v", received, ctx.Err()))
			return time.Now()
		}
	}
}

// progress sums what has been received and reports whether every open
// subscriber has its channel's count (a closed one will get no more).
func (r *run) progress() (received uint64, complete bool) {
	complete = true
	for _, s := range r.subs {
		n := s.received.Load()
		received += n
		if n < r.expected[s.channel].count && s.closeCode.Load() == 0 {
			complete = false
		}
	}
	return received, complete
}

// settle keeps listening briefly, so duplicates sent after the last
// expected publication are counted too.
func (r *run) settle(ctx context.Context) {
	select {
	case <-time.After(settleTime):
	case <-ctx.Done():
	}
}

// closeSubscribers closes the subscriber pools; afterwards no callback
// runs, so the subscribers' plain fields may be read.
func (r *run) closeSubscribers() {
	for _, sp := range r.subPools {
		_ = sp.pool.Close()
	}
}

// closeAll releases whatever is still open.
func (r *run) closeAll() {
	r.closeSubscribers()
	for _, p := range r.pubPools {
		_ = p.Close()
	}
	for _, c := range r.nonReaders {
		if c != nil {
			_ = c.Close()
		}
	}
}

// verify compares what each subscriber received with what its channel had
// accepted and sums the counters into the result.
func (r *run) verify() {
	res := &r.res
	var reported bool
	for _, s := range r.subs {
		exp := r.expected[s.channel]
		got := s.received.Load()
		res.ExpectedDeliveries += exp.count
		res.Delivered += got
		res.Duplicates += s.dups
		res.OutOfOrder += s.outOfOrder
		res.OffsetViolations += s.offsetViolations
		res.CrossChannel += s.crossChannel
		res.BadFrames += s.badFrames
		missing, unexpected := compareSets(got-s.dups, s.hash, exp)
		res.Missing += missing
		res.Announced += min(s.announced.Load(), missing)
		res.Unexpected += unexpected
		if code := s.closeCode.Load(); code != 0 {
			if res.ReaderCloses == nil {
				res.ReaderCloses = map[string]int{}
			}
			res.ReaderCloses[strconv.Itoa(int(code))]++
		}
		if !reported && (missing != 0 || unexpected != 0 || s.dups != 0 || s.outOfOrder != 0 || s.offsetViolations != 0) {
			reported = true
			r.sh.problems.add(fmt.Sprintf("first bad subscriber: %d on %s: %d received of %d accepted, %d duplicates, %d out of order, %d offset violations, %s",
				s.index, ChannelName(s.channel), got, exp.count, s.dups, s.outOfOrder, s.offsetViolations, hashVerdict(s.hash, exp.hash)))
		}
	}
}

// compareSets tells how a subscriber's unique publications differ from the
// accepted ones: by count, or, with equal counts, by the hash sum (then at
// least one was replaced by another).
func compareSets(unique, hash uint64, exp tally) (missing, unexpected uint64) {
	switch {
	case unique < exp.count:
		return exp.count - unique, 0
	case unique > exp.count:
		return 0, unique - exp.count
	case hash != exp.hash:
		return 1, 1
	}
	return 0, 0
}

func hashVerdict(got, want uint64) string {
	if got == want {
		return "set hash matches"
	}
	return "set hash differs"
}
