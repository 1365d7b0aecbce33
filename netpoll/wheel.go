package netpoll

import (
	"sync"
	"time"
)

// wheel is a hashed timing wheel: one intrusive doubly-linked list of
// descriptors per slot, so scheduling, rescheduling and cancelling are O(1)
// and cost no allocation. Expiry does not call user code directly; it
// notifies the descriptor with EventTimer, so timer handling is serialized
// with I/O handling on the descriptor's worker.
//
// Deadlines further away than one revolution simply stay in their slot for
// extra revolutions: a slot visit only expires descriptors whose tick has
// come.
//
// An empty wheel needs no tick. The Poller's timer goroutine stops ticking
// when every wheel is empty and waits on wake, which a wheel signals when
// its first timer is set; the wheel then catches up with the ticks it
// slept through, which had nothing to expire. A host of idle connections
// with no timer (wsgate's --heartbeat tcp) costs no wake-up at all.
type wheel struct {
	mu    sync.Mutex
	start time.Time
	tick  time.Duration
	now   int64 // last tick processed
	armed int   // descriptors linked
	slots []*Desc
	wake  chan<- struct{} // told when armed leaves 0; nil: nobody sleeps
}

func newWheel(start time.Time, tick time.Duration, slots int, wake chan<- struct{}) *wheel {
	return &wheel{start: start, tick: tick, slots: make([]*Desc, slots), wake: wake}
}

// tickOf rounds t up to a tick number, so a timer never fires early.
//
// It divides before rounding, never adding tick-1 to the duration:
// time.Time.Sub saturates at ~292 years, and the sum would wrap negative,
// turning a far deadline (a token's exp in year 3000, an expiry given in
// milliseconds) into one due at the next tick. A time past what a Duration
// holds gets the saturated tick, ~292 years away: it never fires.
func (w *wheel) tickOf(t time.Time) int64 {
	d := t.Sub(w.start)
	n := d / w.tick
	if d%w.tick > 0 {
		n++
	}
	return int64(n)
}

func (w *wheel) set(d *Desc, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setLocked(d, at)
}

func (w *wheel) setBefore(d *Desc, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d.tick == 0 || d.tick > w.tickOf(at) {
		w.setLocked(d, at)
	}
}

func (w *wheel) setLocked(d *Desc, at time.Time) {
	if d.tick != 0 {
		w.unlink(d) // the wheel is not empty: d was in it
	} else if w.armed <= 0 {
		w.wakeUp()
	}
	w.armed++
	t := w.tickOf(at)
	if t <= w.now {
		t = w.now + 1
	}
	d.tick = t
	slot := &w.slots[t%int64(len(w.slots))]
	d.tprev, d.tnext = nil, *slot
	if *slot != nil {
		(*slot).tprev = d
	}
	*slot = d
}

func (w *wheel) stop(d *Desc) {
	w.mu.Lock()
	if d.tick != 0 {
		w.unlink(d)
	}
	w.mu.Unlock()
}

func (w *wheel) unlink(d *Desc) {
	if d.tprev != nil {
		d.tprev.tnext = d.tnext
	} else {
		w.slots[d.tick%int64(len(w.slots))] = d.tnext
	}
	if d.tnext != nil {
		d.tnext.tprev = d.tprev
	}
	d.tprev, d.tnext, d.tick = nil, nil, 0
	w.armed--
}

// wakeUp readies an empty wheel for its first timer. The ticks since the
// last advance (perhaps a long sleep) had nothing to expire: they are
// skipped instead of visited. The timer goroutine is told to tick again.
func (w *wheel) wakeUp() {
	w.now = max(w.now, w.tickAt(time.Now()))
	if w.wake != nil {
		select {
		case w.wake <- struct{}{}:

		default: // a wake-up is already pending
		}
	}
}

// tickAt is the last tick that has passed at t (tickOf rounds up instead).
func (w *wheel) tickAt(t time.Time) int64 { return int64(t.Sub(w.start) / w.tick) }

// advance expires every descriptor whose tick is ≤ the tick of now, and
// reports whether any timer is left.
func (w *wheel) advance(now time.Time) (armed bool) {
	target := w.tickAt(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.armed <= 0 {
		w.now = max(w.now, target)
		return false
	}
	for w.now < target {
		w.now++
		slot := w.now % int64(len(w.slots))
		for d := w.slots[slot]; d != nil; {
			next := d.tnext
			if d.tick <= w.now {
				w.unlink(d)
				d.Notify(EventTimer)
			}
			d = next
		}
	}
	return w.armed > 0
}

// SetTimer (re)schedules the descriptor's single timer: the Handler is
// called with EventTimer at or shortly after at (timer resolution is the
// poller's tick).
func (d *Desc) SetTimer(at time.Time) { d.loop.wheel.set(d, at) }

// SetTimerBefore sets the descriptor's timer to at unless it is already
// due by then: for a caller that needs to run by at but must not postpone
// an earlier deadline someone else set.
func (d *Desc) SetTimerBefore(at time.Time) { d.loop.wheel.setBefore(d, at) }

// StopTimer cancels the descriptor's timer, if any.
func (d *Desc) StopTimer() { d.loop.wheel.stop(d) }
