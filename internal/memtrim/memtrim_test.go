package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

const mib = 1 << 20

func TestWorth(t *testing.T) {
	var c Config
	// at: a baseline with no growth, so only the excess decides.
	at := func(now Heap, floor uint64) Baseline { return Baseline{Floor: floor, Resident: now.Resident} }
	for _, tc := range []struct {
		name      string
		prev, now Heap
		base      func(now Heap) Baseline
		want      bool
	}{
		{"quiet, half the live heap in excess", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib}, nil, true},
		{"allocating: a surge in progress", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib, Allocated: 20 * mib}, nil, false},
		{"allocating within the noise", Heap{Allocated: 500 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib, Allocated: 506 * mib}, nil, true},
		{"a small heap's noise", Heap{Allocated: 10 * mib}, Heap{Live: 2 * mib, Resident: 4 * mib, Allocated: 10*mib + 200<<10}, nil, true},
		{"shrunk and quiet", Heap{Live: 200 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib}, nil, true},
		{"excess below the ratio", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 115 * mib}, nil, false},
		{"excess below the byte floor", Heap{Live: 2 * mib}, Heap{Live: 2 * mib, Resident: 2*mib + mib/2}, nil, false},
		{"what the last trim left does not count", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib},
			func(now Heap) Baseline { return at(now, 40*mib) }, false},
		{"but a new surge over it does", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 180 * mib},
			func(now Heap) Baseline { return at(now, 40*mib) }, true},
		{"nor a heap smaller than its live size", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 90 * mib}, nil, false},
		// Live is stale when a surge's connections closed after the last
		// collection: growth since the last trim shows the surge.
		{"stale live: grown since the last trim", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 110 * mib},
			func(Heap) Baseline { return Baseline{Resident: 60 * mib} }, true},
		{"grown within the ratio", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 110 * mib},
			func(Heap) Baseline { return Baseline{Resident: 100 * mib} }, false},
		{"grown, but still allocating", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 110 * mib, Allocated: 20 * mib},
			func(Heap) Baseline { return Baseline{Resident: 60 * mib} }, false},
		{"grown by less than the byte floor", Heap{Live: 2 * mib}, Heap{Live: 2 * mib, Resident: 2*mib + mib/2},
			func(Heap) Baseline { return Baseline{Resident: 2 * mib} }, false},
	} {
		base := at(tc.now, 0)
		if tc.base != nil {
			base = tc.base(tc.now)
		}
		if got := c.Worth(tc.prev, tc.now, base); got != tc.want {
			t.Errorf("%s: Worth = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// surge allocates 64 MiB and drops it.
func surge() {
	held := make([][]byte, 0, 64)
	for range 64 {
		held = append(held, make([]byte, 1*mib))
	}
	runtime.KeepAlive(held)
}

// TestWorthSeesASurgeStillCountedLive: a surge collected while it was
// still held, then dropped, is counted in Live until the next collection,
// so its excess looks small; its growth since the baseline shows it, and
// the trim returns it.
func TestWorthSeesASurgeStillCountedLive(t *testing.T) {
	runtime.GC()
	debug.FreeOSMemory()
	start := Read()
	base := Baseline{Floor: start.Excess(0), Resident: start.Resident}
	held := make([][]byte, 0, 64)
	for range 64 {
		held = append(held, make([]byte, 1*mib))
	}
	runtime.GC() // the surge is live in this collection
	runtime.KeepAlive(held)
	held = nil
	prev := Read()
	now := Read()
	var c Config
	c = c.withDefaults()
	if now.Live < 48*mib || c.enough(now.Excess(base.Floor), now.Live) {
		t.Fatalf("setup: live %d MiB, excess %d MiB: want the surge counted live, and too little excess to trim",
			now.Live/mib, now.Excess(base.Floor)/mib)
	}
	if !c.Worth(prev, now, base) {
		t.Fatalf("not worth a trim: resident %d MiB against %d after the last trim", now.Resident/mib, base.Resident/mib)
	}
	debug.FreeOSMemory()
	if after := Read(); now.Resident < after.Resident+32*mib {
		t.Fatalf("the trim returned %d MiB of the 64", (int64(now.Resident)-int64(after.Resident))/mib)
	}
}

// TestRunReturnsAFreedSurge: after a surge is dropped and the heap goes
// quiet, Run gives the surge's pages back, once.
func TestRunReturnsAFreedSurge(t *testing.T) {
	surge()
	runtime.GC() // the surge is garbage now, and Go keeps its pages
	before := Read()
	if before.Excess(0) < 32*mib {
		t.Fatalf("setup: excess %d MiB after the surge, want ≥ 32", before.Excess(0)/mib)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var stats Stats
	go func() { Run(ctx, Config{Interval: 50 * time.Millisecond, Stats: &stats}); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for Read().Excess(0) >= 16*mib && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // six more looks: nothing left worth a trim
	cancel()
	<-done
	trims := stats.Trims.Load()
	after := Read()
	if after.Excess(0) >= 16*mib {
		t.Errorf("excess %d MiB after Run, want < 16 (before: %d)", after.Excess(0)/mib, before.Excess(0)/mib)
	}
	if trims != 1 {
		t.Errorf("%d trims, want 1: a trimmed heap must not be trimmed again", trims)
	}
	if stats.TrimmedBytes.Load() < 16*mib {
		t.Errorf("%d bytes trimmed, want ≥ 16 MiB", stats.TrimmedBytes.Load())
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, Config{Interval: time.Hour}); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
