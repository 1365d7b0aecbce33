package million

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
)

// probe reads the host and the fleet's processes from /proc.
type probe struct {
	proc     procfs.Root
	pageSize int

	slab0 int64 // host slab before the run

	// Slab is costly to read (the kernel walks its caches): at most once
	// per slabEvery, the last value reused in between.
	slabMu   sync.Mutex
	slabAt   time.Time
	slabLast int64
}

const slabEvery = 2 * time.Second

func newProbe(proc procfs.Root) (*probe, error) {
	p := &probe{proc: proc, pageSize: os.Getpagesize()}
	slab, err := proc.ReadSlabBytes(p.pageSize)
	if err != nil {
		return nil, fmt.Errorf("read slabinfo (needs root): %w", err)
	}
	p.slab0 = slab
	return p, nil
}

// rebase makes the host's slab memory now the baseline: each design's
// kernel memory is counted from its own start.
func (p *probe) rebase() {
	p.slabMu.Lock()
	defer p.slabMu.Unlock()
	if v, err := p.proc.ReadSlabBytes(p.pageSize); err == nil {
		p.slab0, p.slabLast, p.slabAt = v, v, time.Now()
	}
}

// slabGrowth returns the host's slab memory minus the run's baseline.
func (p *probe) slabGrowth(fresh bool) int64 {
	p.slabMu.Lock()
	defer p.slabMu.Unlock()
	if fresh || time.Since(p.slabAt) >= slabEvery {
		if v, err := p.proc.ReadSlabBytes(p.pageSize); err == nil {
			p.slabLast, p.slabAt = v, time.Now()
		}
	}
	return p.slabLast - p.slab0
}

// rss sums the RSS of pids (a process that is gone counts 0).
func (p *probe) rss(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		if st, err := p.proc.ReadStatus(pid); err == nil {
			sum += st.RSSBytes
		}
	}
	return sum
}

// cpu sums the utime+stime of pids.
func (p *probe) cpu(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		if d, err := p.proc.ReadCPU(pid); err == nil {
			sum += d
		}
	}
	return sum
}

// hostCPU is the whole host's CPU time so far (zero if /proc/stat cannot
// be read: the report then shows 0).
func (p *probe) hostCPU() procfs.HostCPU {
	h, _ := p.proc.ReadHostCPU()
	return h
}

// sample is the fleet's state now, t seconds after t0.
func (p *probe) sample(f *fleet, tot Totals, phase string, t0 time.Time, fresh bool) results.MillionSample {
	servers, clients := f.pids()
	s := results.MillionSample{
		T: time.Since(t0).Seconds(), Phase: phase, Conns: tot.Subscribed, Upgraded: tot.Upgraded, Failed: tot.Failed,
		ServerRSSBytes: p.rss(servers), ClientRSSBytes: p.rss(clients), KernelSlabBytes: p.slabGrowth(fresh),
	}
	if st, err := p.proc.ReadSockstat(); err == nil {
		s.TCPMemBytes = st.MemPages * int64(p.pageSize)
	}
	s.MemAvailableBytes, _ = p.proc.ReadMemAvailable()
	return s
}

// guard watches MemAvailable (and the load average) while a run holds
// the host: below the floor it cancels the context it was given, with an
// errMemoryFloor cause.
type guard struct {
	proc   procfs.Root
	min    atomic.Int64
	load   atomic.Uint64 // max load average × 100
	floor  atomic.Int64
	cancel context.CancelCauseFunc
}

// errMemoryFloor is the cause of a cancel by the guard.
type errMemoryFloor struct{ available, floor int64 }

func (e errMemoryFloor) Error() string {
	return fmt.Sprintf("memory: MemAvailable %s fell below the floor of %s", gib(e.available), gib(e.floor))
}

func gib(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }

// guardEvery is how often the guard reads /proc/meminfo: at 10-20k
// connections a second and ~30 KB each (the naive server), 200 ms is
// ~100 MB of overshoot at most.
const guardEvery = 200 * time.Millisecond

// watch runs until ctx ends.
func (g *guard) watch(ctx context.Context) {
	t := time.NewTicker(guardEvery)
	defer t.Stop()
	loadAt := time.Time{}
	for {
		if avail, err := g.proc.ReadMemAvailable(); err == nil {
			for {
				m := g.min.Load()
				if (m != 0 && avail >= m) || g.min.CompareAndSwap(m, avail) {
					break
				}
			}
			if f := g.floor.Load(); avail < f {
				g.cancel(errMemoryFloor{available: avail, floor: f})
			}
		}
		if time.Since(loadAt) >= time.Second {
			loadAt = time.Now()
			if l, err := g.proc.ReadLoadAvg(); err == nil && uint64(l*100) > g.load.Load() {
				g.load.Store(uint64(l * 100))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gcAll reads every server's GC record (nil entries: unreadable).
func gcAll(ctx context.Context, scs []*scrape.Client) []*scrape.GCStats {
	out := make([]*scrape.GCStats, len(scs))
	var wg sync.WaitGroup
	for i, sc := range scs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := sc.GCStats(ctx); err == nil {
				out[i] = &s
			}
		}()
	}
	wg.Wait()
	return out
}

// heapAll forces a GC in every server and sums the heap in use; it
// returns how many servers answered.
func heapAll(ctx context.Context, scs []*scrape.Client) (sum int64, answered int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, startParallel) // a forced GC each: not all at once
	for _, sc := range scs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if h, err := sc.HeapInuse(ctx); err == nil {
				mu.Lock()
				sum += h
				answered++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return sum, answered
}
