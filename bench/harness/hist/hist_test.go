package hist

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestIndexBoundsRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<20 + 12345, 1 << 40, 1 << 45} {
		i := index(v)
		if i < prev {
			t.Fatalf("index not monotonic at %d", v)
		}
		prev = i
		lo, w := bounds(i)
		if v < lo || v >= lo+w {
			t.Fatalf("v=%d in bucket %d [%d,%d)", v, i, lo, lo+w)
		}
		if v >= sub && float64(w)/float64(lo) > 1.0/sub+1e-12 {
			t.Fatalf("bucket %d too wide: %d/%d", i, w, lo)
		}
	}
	if i := index(1 << 62); i != buckets-1 {
		t.Fatalf("huge value in bucket %d", i)
	}
}

// TestPercentilesMatchExact compares with the exact nearest-rank values.
func TestPercentilesMatchExact(t *testing.T) {
	var h Hist
	r := rand.New(rand.NewPCG(1, 2))
	var exact []time.Duration
	for range 100000 {
		// Log-normal-ish spread from µs to seconds.
		d := time.Duration(float64(time.Microsecond) * (1 + r.ExpFloat64()*r.ExpFloat64()*2000))
		exact = append(exact, d)
		h.Record(d)
	}
	slices.Sort(exact)
	ps := []float64{0, 50, 90, 99, 99.9, 100}
	got := h.Percentiles(ps...)
	for k, p := range ps {
		rank := max(int(p*float64(len(exact))/100+0.9999999), 1)
		want := exact[rank-1]
		if diff := float64(got[k]-want) / float64(want); diff > 1.0/sub || diff < -1.0/sub {
			t.Errorf("p%v = %v, exact %v", p, got[k], want)
		}
	}
	if h.Max() != exact[len(exact)-1] || h.Count() != uint64(len(exact)) {
		t.Fatalf("max %v count %d", h.Max(), h.Count())
	}
}

func TestEmptyAndNegative(t *testing.T) {
	var h Hist
	if p := h.Percentiles(50, 99); p[0] != 0 || p[1] != 0 || h.CDF(10) != nil || h.Mean() != 0 {
		t.Fatal("empty histogram reports samples")
	}
	h.Record(-time.Second)
	h.Record(3 * time.Nanosecond)
	if h.Percentile(50) != 0 || h.Percentile(100) != 3 || h.Mean() != 1 {
		t.Fatalf("p50 %v p100 %v mean %v", h.Percentile(50), h.Percentile(100), h.Mean())
	}
}

func TestCDF(t *testing.T) {
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	c := h.CDF(20)
	if len(c) != 20 {
		t.Fatalf("%d points", len(c))
	}
	for i := 1; i < len(c); i++ {
		if c[i].Ms < c[i-1].Ms || c[i].Frac < c[i-1].Frac {
			t.Fatalf("not monotonic at %d: %+v", i, c)
		}
	}
	if last := c[len(c)-1]; last.Frac != 1 || last.Ms != 1000 {
		t.Fatalf("last point %+v", last)
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Hist
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10000 {
				h.Record(time.Duration(g*10000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 80000 || h.Max() != 79999*time.Microsecond {
		t.Fatalf("count %d max %v", h.Count(), h.Max())
	}
}

// TestAdd: a histogram that adds two others reports what one histogram of
// all their samples would.
func TestAdd(t *testing.T) {
	var a, b, all, sum Hist
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	sum.Add(&a)
	sum.Add(&b)
	if sum.Count() != all.Count() || sum.Max() != all.Max() || sum.Mean() != all.Mean() ||
		sum.Percentile(99) != all.Percentile(99) || sum.Percentile(50) != all.Percentile(50) {
		t.Fatalf("sum: n %d max %v mean %v p50 %v p99 %v; all: n %d max %v mean %v p50 %v p99 %v",
			sum.Count(), sum.Max(), sum.Mean(), sum.Percentile(50), sum.Percentile(99),
			all.Count(), all.Max(), all.Mean(), all.Percentile(50), all.Percentile(99))
	}
}

// Splitting samples over several histograms, carrying each as JSON and
// merging gives the histogram of all the samples.
func TestSnapshotMergeEqualsOneHistogram(t *testing.T) {
	var whole Hist
	parts := make([]Hist, 3)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 30000 {
		d := time.Duration(r.Int64N(int64(2 * time.Second)))
		whole.Record(d)
		parts[i%3].Record(d)
	}
	var merged Hist
	for i := range parts {
		b, err := json.Marshal(parts[i].Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		merged.Merge(s)
	}
	ps := []float64{0, 50, 90, 99, 99.9, 100}
	if got, want := merged.Percentiles(ps...), whole.Percentiles(ps...); !slices.Equal(got, want) {
		t.Errorf("merged percentiles %v, want %v", got, want)
	}
	if merged.Count() != whole.Count() || merged.Max() != whole.Max() || merged.Mean() != whole.Mean() {
		t.Errorf("merged count/max/mean %d/%v/%v, want %d/%v/%v",
			merged.Count(), merged.Max(), merged.Mean(), whole.Count(), whole.Max(), whole.Mean())
	}
	var empty Hist
	var none Hist
	empty.Merge(none.Snapshot())
	if empty.Count() != 0 || empty.Max() != 0 {
		t.Errorf("merging an empty snapshot: count %d max %v", empty.Count(), empty.Max())
	}
}
