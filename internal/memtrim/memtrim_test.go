package memtrim

import (
	"context"
	"runtime"
	"testing"
	"time"
)

const mib = 1 << 20

func TestWorth(t *testing.T) {
	var c Config
	for _, tc := range []struct {
		name      string
		prev, now Heap
		floor     uint64
		want      bool
	}{
		{"quiet, half the live heap in excess", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib}, 0, true},
		{"allocating: a surge in progress", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib, Allocated: 20 * mib}, 0, false},
		{"allocating within the noise", Heap{Allocated: 500 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib, Allocated: 506 * mib}, 0, true},
		{"a small heap's noise", Heap{Allocated: 10 * mib}, Heap{Live: 2 * mib, Resident: 4 * mib, Allocated: 10*mib + 200<<10}, 0, true},
		{"shrunk and quiet", Heap{Live: 200 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib}, 0, true},
		{"excess below the ratio", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 115 * mib}, 0, false},
		{"excess below the byte floor", Heap{Live: 2 * mib}, Heap{Live: 2 * mib, Resident: 2*mib + mib/2}, 0, false},
		{"what the last trim left does not count", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 150 * mib}, 40 * mib, false},
		{"but a new surge over it does", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 180 * mib}, 40 * mib, true},
		{"nor a heap smaller than its live size", Heap{Live: 100 * mib}, Heap{Live: 100 * mib, Resident: 90 * mib}, 0, false},
	} {
		if got := c.Worth(tc.prev, tc.now, tc.floor); got != tc.want {
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
