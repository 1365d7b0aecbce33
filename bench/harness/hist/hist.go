// Package hist is a lock-free log-linear latency histogram. A fan-out run
// records millions of publish→delivery samples from several event-loop
// workers at once; keeping them all would cost tens of MB and a lock, so
// each sample is one atomic add into a bucket whose width is at most 1/64
// of its value (percentiles within ~1.6 %).
package hist

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits = 6
	sub     = 1 << subBits // buckets per power of two
	// maxExp covers durations up to 2^(maxExp+subBits) ns ≈ 39 hours;
	// longer samples land in the last bucket.
	maxExp  = 40
	buckets = (maxExp + 1) * sub
)

// Hist counts durations. The zero value is ready; it must not be copied
// after first use.
type Hist struct {
	counts [buckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

// index maps v ≥ 0 (nanoseconds) to its bucket: values below 64 have a
// bucket each; above, the top subBits+1 bits select the bucket.
func index(v uint64) int {
	if v < sub {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [64, 128)
	i := (e+1)*sub + int(v>>e) - sub
	return min(i, buckets-1)
}

// bounds returns the smallest value of bucket i and its width.
func bounds(i int) (lo, width uint64) {
	if i < sub {
		return uint64(i), 1
	}
	e := i/sub - 1
	return uint64(sub+i%sub) << e, 1 << e
}

// Record adds one sample; negative durations count as 0 (clock skew
// between processes is not a latency).
func (h *Hist) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[index(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Add adds o's samples to h (o must not be recording meanwhile).
func (h *Hist) Add(o *Hist) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	for v := o.max.Load(); ; {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count returns the number of samples.
func (h *Hist) Count() uint64 { return h.n.Load() }

// Max returns the largest sample (exact).
func (h *Hist) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the mean sample (exact; 0 without samples).
func (h *Hist) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// snapshot copies the bucket counts (consistent enough while recording:
// each count is read once).
func (h *Hist) snapshot() (c [buckets]uint64, total uint64) {
	for i := range c {
		c[i] = h.counts[i].Load()
		total += c[i]
	}
	return c, total
}

// Percentile returns the nearest-rank percentile p (0–100) as the middle of
// its bucket, capped at Max; 0 without samples.
func (h *Hist) Percentile(p float64) time.Duration {
	return h.Percentiles(p)[0]
}

// Percentiles returns several percentiles from one snapshot.
func (h *Hist) Percentiles(ps ...float64) []time.Duration {
	c, total := h.snapshot()
	out := make([]time.Duration, len(ps))
	if total == 0 {
		return out
	}
	mx := h.Max()
	for k, p := range ps {
		if math.IsNaN(p) {
			p = 0
		}
		p = min(max(p, 0), 100)
		rank := uint64(math.Ceil(p * float64(total) / 100))
		rank = max(rank, 1)
		var seen uint64
		for i, n := range c {
			seen += n
			if seen >= rank {
				lo, w := bounds(i)
				out[k] = min(time.Duration(lo+w/2), mx)
				break
			}
		}
	}
	return out
}

// Point is one step of a cumulative distribution: Frac of the samples were
// at most Ms milliseconds.
type Point struct {
	Ms   float64 `json:"ms"`
	Frac float64 `json:"frac"`
}

// CDF returns the cumulative distribution at the upper edge of every
// non-empty bucket, thinned to at most maxPoints points (the last one,
// frac 1, always kept) so a chart or a JSON file stays small.
func (h *Hist) CDF(maxPoints int) []Point {
	c, total := h.snapshot()
	if total == 0 || maxPoints < 1 {
		return nil
	}
	var all []Point
	var seen uint64
	mx := float64(h.Max()) / 1e6
	for i, n := range c {
		if n == 0 {
			continue
		}
		seen += n
		lo, w := bounds(i)
		ms := min(float64(lo+w)/1e6, mx)
		all = append(all, Point{Ms: ms, Frac: float64(seen) / float64(total)})
	}
	if len(all) <= maxPoints {
		return all
	}
	out := make([]Point, 0, maxPoints)
	step := float64(len(all)-1) / float64(maxPoints-1)
	for k := range maxPoints {
		out = append(out, all[int(math.Round(float64(k)*step))])
	}
	return out
}

// Snapshot is a histogram as data: its non-empty buckets, sum and max. It
// carries a histogram from one process to another (as JSON), where Merge
// adds it to a Hist, so percentiles over several load-client processes are
// those of all their samples together.
type Snapshot struct {
	// Buckets maps a bucket index to its count (non-empty buckets only).
	Buckets map[int]uint64 `json:"buckets,omitempty"`
	Count   uint64         `json:"count"`
	SumNs   int64          `json:"sum_ns"`
	MaxNs   int64          `json:"max_ns"`
}

// Snapshot returns h's buckets, count, sum and max.
func (h *Hist) Snapshot() Snapshot {
	c, total := h.snapshot()
	s := Snapshot{Count: total, SumNs: h.sum.Load(), MaxNs: h.max.Load()}
	for i, n := range c {
		if n > 0 {
			if s.Buckets == nil {
				s.Buckets = map[int]uint64{}
			}
			s.Buckets[i] = n
		}
	}
	return s
}

// Merge adds the samples of s to h. Bucket indexes outside h's range (a
// snapshot from a different build) land in the nearest bucket.
func (h *Hist) Merge(s Snapshot) {
	var n uint64
	for i, c := range s.Buckets {
		h.counts[min(max(i, 0), buckets-1)].Add(c)
		n += c
	}
	h.n.Add(n)
	h.sum.Add(s.SumNs)
	for {
		m := h.max.Load()
		if s.MaxNs <= m || h.max.CompareAndSwap(m, s.MaxNs) {
			return
		}
	}
}
