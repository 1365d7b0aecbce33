package pubsub

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Latencies are recorded in a log-linear histogram of microseconds: 8
// buckets per power of two (≤ 6 % error at the bucket midpoint) from 1 µs
// to 2⁴⁰ µs. Millions of deliveries cost a few KB instead of a sample each.
const (
	histSubBits = 3
	histSub     = 1 << histSubBits
	histMaxBits = 40
	histBuckets = histSub + (histMaxBits-histSubBits)*histSub
	// histShards spreads the event loop goroutines' atomic adds over
	// separate cache lines; a subscriber always uses the same shard.
	histShards = 16
)

// histogram is safe for concurrent use.
type histogram struct {
	shards [histShards]histShard
}

type histShard struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64 // nanoseconds
}

func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	if us >= 1<<histMaxBits {
		return histBuckets - 1
	}
	octave := bits.Len64(us) - 1 // ≥ histSubBits
	sub := (us >> (octave - histSubBits)) & (histSub - 1)
	return histSub + (octave-histSubBits)*histSub + int(sub)
}

// bucketMid is the midpoint of bucket b, in microseconds.
func bucketMid(b int) float64 {
	if b < histSub {
		return float64(b) + 0.5
	}
	octave := (b-histSub)/histSub + histSubBits
	sub := (b - histSub) % histSub
	width := uint64(1) << (octave - histSubBits)
	low := uint64(histSub+sub) * width
	return float64(low) + float64(width)/2
}

// record adds one latency to shard s. Negative latencies (clock steps)
// count as zero.
func (h *histogram) record(s int, d time.Duration) {
	sh := &h.shards[s%histShards]
	ns := max(int64(d), 0)
	sh.counts[bucketOf(uint64(ns)/1000)].Add(1)
	for {
		cur := sh.max.Load()
		if ns <= cur || sh.max.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// LatencyMs summarizes a histogram in milliseconds.
type LatencyMs struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// summary merges the shards and reads nearest-rank percentiles.
func (h *histogram) summary() LatencyMs {
	var counts [histBuckets]uint64
	var total uint64
	var maxNs int64
	for i := range h.shards {
		sh := &h.shards[i]
		for b := range counts {
			n := sh.counts[b].Load()
			counts[b] += n
			total += n
		}
		maxNs = max(maxNs, sh.max.Load())
	}
	if total == 0 {
		return LatencyMs{}
	}
	pct := func(p float64) float64 {
		rank := uint64(p*float64(total)/100 + 0.999999)
		rank = min(max(rank, 1), total)
		var seen uint64
		for b, n := range counts {
			seen += n
			if seen >= rank {
				// A bucket's midpoint may exceed the true maximum.
				return min(bucketMid(b)/1000, float64(maxNs)/1e6)
			}
		}
		return float64(maxNs) / 1e6
	}
	return LatencyMs{P50: roundUs(pct(50)), P99: roundUs(pct(99)), P999: roundUs(pct(99.9)), Max: roundUs(float64(maxNs) / 1e6)}
}

// roundUs rounds milliseconds to whole microseconds.
func roundUs(ms float64) float64 {
	return math.Round(ms*1000) / 1000
}
