package scrape

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseHeapInuse(t *testing.T) {
	text := "heap profile: 3: 1024 [4: 2048] @ heap/1048576\n1: 512 [1: 512] @ 0x1\n\n# runtime.MemStats\n# Alloc = 123\n# HeapInuse = 4194304\n# Stack = 1 / 2\n"
	n, err := ParseHeapInuse([]byte(text))
	if err != nil || n != 4194304 {
		t.Fatalf("%d %v", n, err)
	}
	if _, err := ParseHeapInuse([]byte("# Alloc = 1\n")); err == nil {
		t.Fatal("missing line accepted")
	}
}

func TestParseGoroutines(t *testing.T) {
	n, err := ParseGoroutines([]byte("goroutine profile: total 38012\n19000 @ 0x1 0x2\n"))
	if err != nil || n != 38012 {
		t.Fatalf("%d %v", n, err)
	}
	if _, err := ParseGoroutines([]byte("heap profile: 1\n")); err == nil {
		t.Fatal("wrong profile accepted")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# TYPE wsgate_conns_open gauge
wsgate_conns_open 19000
wsgate_writev_total 1.5e+06
go_gc_duration_seconds{quantile="0.5"} 0.0001
weird{path="/a b"} 7 1700000000000
`
	m, err := ParseMetrics([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"wsgate_conns_open": 19000, "wsgate_writev_total": 1.5e6,
		`go_gc_duration_seconds{quantile="0.5"}`: 0.0001, `weird{path="/a b"}`: 7,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for _, bad := range []string{"novalue\n", "x{a=\"b\" 1\n", "x abc\n"} {
		if _, err := ParseMetrics([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestClientAgainstPprof runs the real net/http/pprof handlers: the
// formats parsed above are what the Go runtime writes today.
func TestClientAgainstPprof(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("wsgate_conns_open 3\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := New(strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := c.HeapInuse(ctx); err != nil || n <= 0 {
		t.Fatalf("heap %d %v", n, err)
	}
	if n, err := c.Goroutines(ctx); err != nil || n <= 0 {
		t.Fatalf("goroutines %d %v", n, err)
	}
	if m, err := c.Metrics(ctx); err != nil || m["wsgate_conns_open"] != 3 {
		t.Fatalf("metrics %v %v", m, err)
	}
	before, err := c.GCStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	after, err := c.GCStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, lost := after.PausesSince(before); len(p) < 1 || p[len(p)-1] <= 0 || lost != 0 {
		t.Fatalf("pauses after runtime.GC: %v (lost %d)", p, lost)
	}
	if _, err := c.get(ctx, "/nope"); err == nil {
		t.Fatal("404 accepted")
	}
	// A CPU profile: gzipped protobuf, after the requested second.
	start := time.Now()
	prof, err := c.CPUProfile(ctx, time.Second)
	if err != nil || len(prof) < 2 || prof[0] != 0x1f || prof[1] != 0x8b {
		t.Fatalf("profile: %d bytes, %v", len(prof), err)
	}
	if time.Since(start) < time.Second {
		t.Fatal("profile returned before its second")
	}
}

// heapWithGC renders the MemStats tail of a debug=1 heap profile after
// numGC collections whose pause was the collection's number in µs.
func heapWithGC(numGC int) []byte {
	var ring [256]uint64
	for g := 1; g <= numGC; g++ {
		ring[(g+255)%256] = uint64(g) * 1000
	}
	vals := make([]string, 256)
	for i, v := range ring {
		vals[i] = strconv.FormatUint(v, 10)
	}
	return []byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# HeapInuse = 8192\n" +
		"# PauseNs = [" + strings.Join(vals, " ") + "]\n# PauseEnd = [0]\n# NumGC = " + strconv.Itoa(numGC) + "\n# NumForcedGC = 0\n")
}

func TestGCStatsPausesSince(t *testing.T) {
	parse := func(n int) GCStats {
		s, err := ParseGCStats(heapWithGC(n))
		if err != nil {
			t.Fatalf("ParseGCStats(%d): %v", n, err)
		}
		return s
	}
	us := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Microsecond
		}
		return out
	}
	cases := []struct {
		from, to int
		want     []time.Duration
		lost     int
	}{
		{from: 3, to: 3, want: nil},
		{from: 3, to: 5, want: us(4, 5)},
		{from: 250, to: 260, want: us(251, 252, 253, 254, 255, 256, 257, 258, 259, 260)}, // across the ring's end
		{from: 0, to: 300, want: nil, lost: 44},
	}
	for _, c := range cases {
		got, lost := parse(c.to).PausesSince(parse(c.from))
		if c.from == 0 && c.to == 300 {
			if len(got) != 256 || got[0] != 45*time.Microsecond || got[255] != 300*time.Microsecond || lost != c.lost {
				t.Errorf("300 after 0: %d pauses from %v to %v, lost %d", len(got), got[0], got[len(got)-1], lost)
			}
			continue
		}
		if !slices.Equal(got, c.want) || lost != c.lost {
			t.Errorf("%d → %d: %v lost %d, want %v lost %d", c.from, c.to, got, lost, c.want, c.lost)
		}
	}
	for _, bad := range []string{"# NumGC = 3\n", "# PauseNs = [1 2 3]\n# NumGC = 3\n", "# PauseNs = [" + strings.Repeat("x ", 256) + "]\n# NumGC = 1\n"} {
		if _, err := ParseGCStats([]byte(bad)); err == nil {
			t.Errorf("ParseGCStats(%.30q…) accepted it", bad)
		}
	}
}
