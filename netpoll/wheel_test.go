package netpoll

import (
	"testing"
	"time"
)

// TestWheelSetBefore: setBefore arms an unset timer and brings an armed one
// forward, but never pushes it back.
func TestWheelSetBefore(t *testing.T) {
	start := time.Now()
	w := newWheel(start, 10*time.Millisecond, 16)
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
