package results

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/procfs"
)

// idlePoints makes points with exact per-connection costs.
func idlePoints(rss, heap, gor, slab float64) []IdlePoint {
	pts := []IdlePoint{{Conns: 0, RSSBytes: 5 << 20, FDs: 12}}
	for _, n := range []int{1000, 5000, 10000, 19000} {
		x := float64(n)
		pts = append(pts, IdlePoint{
			Conns: n, RSSBytes: int64(8<<20 + rss*x), HeapInuseBytes: int64(3<<20 + heap*x),
			Goroutines: int(10 + gor*x), Threads: 9, FDs: 12 + n,
			KernelSlabBytes: int64(300<<20 + slab*x), TCPMemBytes: 0,
		})
	}
	return pts
}

func TestFitIdleAndProject(t *testing.T) {
	idle := &Idle{Points: idlePoints(800, 400, 0, 8200)}
	if err := FitIdle(idle); err != nil {
		t.Fatal(err)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6*math.Max(1, math.Abs(want)) }
	if !near(idle.RSSBytesPerConn, 800) || !near(idle.HeapBytesPerConn, 400) || idle.GoroutinesPerConn != 0 ||
		!near(idle.FDsPerConn, 1) || !near(idle.KernelBytesPerConn, 4100) || idle.ThreadsPerConn != 0 {
		t.Fatalf("slopes %+v", idle)
	}
	// The baseline (0 connections) is not part of the fit.
	if f := idle.Fits[FitFDs]; f.N != 4 || !near(f.Intercept, 12) {
		t.Fatalf("fd fit %+v", f)
	}
	p, ok := Project(&Design{Design: Wsgate, Idle: idle}, 1000000)
	if !ok {
		t.Fatal("no projection")
	}
	if !near(p.RSSBytes, 8<<20+800e6) || !near(p.KernelBytes, 4100e6) || !near(p.TotalBytes, p.RSSBytes+p.KernelBytes) ||
		!near(p.FDs, 1000012) || p.MeasuredUpTo != 19000 {
		t.Fatalf("projection %+v", p)
	}
	if _, ok := Project(&Design{Design: Naive}, 10); ok {
		t.Fatal("projection without idle data")
	}
	if err := FitIdle(&Idle{Points: idlePoints(1, 1, 1, 1)[:2]}); err == nil {
		t.Fatal("one point fitted")
	}
}

func TestRunRoundTrip(t *testing.T) {
	r := NewRun("wsbench idle", procfs.Machine{CPUs: 2, Model: "x"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.Design(Wsgate).Idle = &Idle{Points: idlePoints(800, 400, 0, 8200)}
	if err := FitIdle(r.Design(Wsgate).Idle); err != nil {
		t.Fatal(err)
	}
	var h hist.Hist
	h.Record(3 * time.Millisecond)
	r.Design(Naive).Fanout = []*Fanout{{Variant: "one channel", Modes: []*FanoutMode{{Mode: "rate", LatencyMs: LatencyOf(&h, 10)}}}}
	r.Problem("naive: %d dials failed", 3)
	if len(r.Designs) != 2 || r.Design(Wsgate) != r.Find(Wsgate) || r.Find(Floor) != nil {
		t.Fatal("designs")
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Date != "2026-01-02T03:04:05Z" || back.Find(Wsgate).Idle.RSSBytesPerConn != r.Find(Wsgate).Idle.RSSBytesPerConn ||
		back.Problems[0] != "naive: 3 dials failed" || math.Abs(back.Find(Naive).Fanout[0].Mode("rate").LatencyMs.P50-3) > 0.05 ||
		back.Find(Naive).Fanout[0].Mode("burst") != nil {
		t.Fatalf("round trip: %+v", back)
	}
}
