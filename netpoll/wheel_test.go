package netpoll

import (
	"testing"
	"time"
)

// TestWheelSetBefore: setBefore arms an unset timer and brings an armed one
// forward, but never pushes it back.
func TestWheelSetBefore(t *testing.T) {
	start := time.Now()
	w := newWheel(start, 10*time.Millisecond, 16, nil)
	d := new(Desc)
	at := func(ticks int) time.Time { return start.Add(time.Duration(ticks) * 10 * time.Millisecond) }

	w.setBefore(d, at(8))
	if d.tick != 8 {
		t.Fatalf("unset timer: tick %d, want 8", d.tick)
	}
	w.setBefore(d, at(12))
	if d.tick != 8 {
		t.Fatalf("a later deadline moved the timer to tick %d, want it kept at 8", d.tick)
	}
	w.setBefore(d, at(3))
	if d.tick != 3 {
		t.Fatalf("an earlier deadline left the timer at tick %d, want 3", d.tick)
	}
	// The timer was moved, not duplicated: it is linked once, in tick 3's slot.
	for i, head := range w.slots {
		n := 0
		for e := head; e != nil; e = e.tnext {
			n++
		}
		want := 0
		if i == 3 {
			want = 1
		}
		if n != want {
			t.Fatalf("slot %d holds %d descriptors, want %d", i, n, want)
		}
	}
}

// TestWheelSleepsWhenEmpty: an empty wheel asks for no tick, signals wake
// on its first timer, and skips the ticks it slept through instead of
// visiting them.
func TestWheelSleepsWhenEmpty(t *testing.T) {
	start := time.Now().Add(-time.Hour) // an hour of ticks already passed
	wake := make(chan struct{}, 1)
	w := newWheel(start, 10*time.Millisecond, 16, wake)
	d, e := new(Desc), new(Desc)
	w.set(d, time.Now().Add(50*time.Millisecond))
	if len(wake) != 1 {
		t.Fatal("the first timer did not signal wake")
	}
	<-wake
	// The hour slept through is skipped: now is the current tick, and the
	// timer sits ~5 ticks ahead of it.
	if ahead := d.tick - w.now; ahead < 4 || ahead > 6 {
		t.Fatalf("timer %d ticks ahead of now, want 5 (now %d)", ahead, w.now)
	}
	w.set(e, time.Now().Add(time.Second))
	w.set(d, time.Now().Add(time.Second)) // moved, still in the wheel
	if len(wake) != 0 {
		t.Fatal("a wheel that was not empty signalled wake")
	}
	w.stop(d)
	if !w.advance(time.Now()) {
		t.Fatal("a wheel with one timer left reported none")
	}
	w.stop(e)
	if w.advance(time.Now()) || w.armed != 0 {
		t.Fatalf("armed %d after stopping every timer", w.armed)
	}
	if len(wake) != 0 {
		t.Fatal("an emptied wheel signalled wake")
	}
}

// TestWheelTickOfFar: a deadline beyond what a time.Duration holds (~292
// years) is a far tick, not a wrapped negative one that is due at once, and
// rounding still goes up (never early) on either side of start.
func TestWheelTickOfFar(t *testing.T) {
	start := time.Now()
	tick := 100 * time.Millisecond
	w := newWheel(start, tick, 1024, nil)
	year := int64(365 * 24 * time.Hour / tick)
	for _, years := range []int{200, 292, 300, 55000} {
		if got := w.tickOf(start.AddDate(years, 0, 0)); got < 200*year {
			t.Fatalf("tickOf(start + %d years) = %d, want a tick at least 200 years away (%d)", years, got, 200*year)
		}
	}
	cases := []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {1, 1}, {tick, 1}, {tick + 1, 2}, {-1, 0}, {-tick, -1}, {-tick - 1, -1},
	}
	for _, c := range cases {
		if got := w.tickOf(start.Add(c.d)); got != c.want {
			t.Errorf("tickOf(start%+v) = %d, want %d", c.d, got, c.want)
		}
	}
}
