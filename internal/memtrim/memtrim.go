// Package memtrim hands a Go process's free heap pages back to the
// operating system once the heap has gone quiet.
//
// Go's background scavenger returns free pages only down to about 10 %
// above the heap goal, and the goal is (1 + GOGC/100) × the live heap. A
// gateway's live heap is almost all connections, which allocate little
// once upgraded: after a surge of handshakes the heap stops churning, no
// collection comes to lower the goal, and the pages the surge used stay
// resident — up to 1.65 × the live heap at GOGC 50. Trimming once the
// heap is quiet (little allocated since the last look) costs one
// collection and gives those pages back; a heap still allocating is left
// alone, so a surge is not slowed by collections it would not otherwise
// run, and a busy heap is not trimmed only to grow back.
package memtrim

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Config says how often to look and what is worth a collection. Zero
// values take the defaults.
type Config struct {
	// Interval between two looks at the heap (default 30 s). A trim
	// happens at most once per interval.
	Interval time.Duration
	// MinExcessBytes is the least excess (see Heap.Excess), or growth
	// since the last trim, worth a trim (default 1 MiB): below it a
	// collection costs more than it saves.
	MinExcessBytes uint64
	// MinExcessRatio is the least excess worth a trim as a fraction of
	// the live heap, or growth as a fraction of the baseline (default
	// 0.2): the ordinary headroom of a busy heap between collections is
	// left to Go.
	MinExcessRatio float64
	// Log receives one debug line per trim (default: discarded).
	Log *slog.Logger
	// Stats, if set, counts the trims (exported on /metrics by the
	// gateway: see gateway.Config.MetricStats).
	Stats *Stats
}

// Stats counts what Run did; the tags name the Prometheus families.
type Stats struct {
	Trims        atomic.Int64 `metric:"wsgate_memory_trims_total" help:"Times free heap was handed back to the OS once the heap had gone quiet (--memory-trim-interval)."`
	TrimmedBytes atomic.Int64 `metric:"wsgate_memory_trimmed_bytes_total" help:"Resident heap bytes those trims gave back to the OS."`
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.MinExcessBytes == 0 {
		c.MinExcessBytes = 1 << 20
	}
	if c.MinExcessRatio <= 0 {
		c.MinExcessRatio = 0.2
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Stats == nil {
		c.Stats = new(Stats)
	}
	return c
}

// Heap is what a decision needs from runtime/metrics.
type Heap struct {
	// Live is the heap the last collection found live.
	Live uint64
	// Resident is the heap memory backed by pages, not returned to the
	// OS: objects live or dead, spans' unused slots, and free pages.
	Resident uint64
	// Allocated is the heap allocated since the process started.
	Allocated uint64
}

// Excess is what the heap holds beyond its live objects and floor: the
// excess the last trim could not remove (slots free in spans still in
// use, which scale with the heap far less than a surge does), so that it
// does not count again.
func (h Heap) Excess(floor uint64) uint64 {
	if h.Resident < h.Live+floor {
		return 0
	}
	return h.Resident - h.Live - floor
}

// quietBytes is the most a heap may allocate between two looks and still
// be quiet: 1/16 of the live heap, at least 256 KiB. An idle gateway's
// pings allocate next to nothing (8 B each measured at 19,000 connections).
func quietBytes(live uint64) uint64 { return max(live/16, 256<<10) }

// Baseline is what the last trim left, or the heap when Run started.
type Baseline struct {
	Floor    uint64 // the excess the trim could not remove (see Heap.Excess)
	Resident uint64 // the resident heap right after it
}

// Worth reports whether to trim now: the heap has been quiet since the
// previous look, and either its excess over the baseline's floor or its
// growth since the baseline is large enough to pay for a collection.
//
// Growth matters because Live is the last collection's: a surge whose
// connections closed after that collection still counts as live, and a
// quiet heap may not collect again for two minutes (Go's forced period),
// so its excess looks small. One trim settles it either way: what is
// really live stays, and becomes the next baseline.
func (c Config) Worth(prev, now Heap, base Baseline) bool {
	c = c.withDefaults()
	if now.Allocated-prev.Allocated > quietBytes(now.Live) {
		return false // still allocating: a surge in progress, or a busy heap
	}
	if excess := now.Excess(base.Floor); c.enough(excess, now.Live) {
		return true
	}
	return now.Resident > base.Resident && c.enough(now.Resident-base.Resident, base.Resident)
}

// enough: n bytes are worth a collection next to a heap of size bytes.
func (c Config) enough(n, size uint64) bool {
	return n >= c.MinExcessBytes && float64(n) >= c.MinExcessRatio*float64(size)
}

// Run looks at the heap every Interval and trims when Worth says so, until
// ctx ends; Config.Stats counts the trims.
func Run(ctx context.Context, cfg Config) {
	cfg = cfg.withDefaults()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	prev := Read()
	base := Baseline{Resident: prev.Resident}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := Read()
		if cfg.Worth(prev, now, base) {
			start := time.Now()
			before := now.Resident
			debug.FreeOSMemory()
			now = Read()
			base = Baseline{Floor: now.Excess(0), Resident: now.Resident}
			cfg.Stats.Trims.Add(1)
			if before > now.Resident {
				cfg.Stats.TrimmedBytes.Add(int64(before - now.Resident))
			}
			cfg.Log.Debug("returned free heap to the OS", "live_bytes", now.Live,
				"resident_before", before, "resident_after", now.Resident, "took", time.Since(start))
		}
		prev = now
	}
}

// Read samples the heap.
func Read() Heap {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	metrics.Read(s)
	return Heap{
		Live:      s[0].Value.Uint64(),
		Resident:  s[1].Value.Uint64() + s[2].Value.Uint64() + s[3].Value.Uint64(),
		Allocated: s[4].Value.Uint64(),
	}
}
