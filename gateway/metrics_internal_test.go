package gateway

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestStatsCollector: tagged fields become families read at scrape time
// (a later Add shows in the next scrape), _total names are counters and the
// others gauges, metric:"-" and unexported fields stay private, and a
// counter added without tags is refused with its name, so a forgotten tag
// fails every test that starts a server instead of hiding a metric.
func TestStatsCollector(t *testing.T) {
	type good struct {
		Hits    atomic.Int64 `metric:"wsgate_test_hits_total" help:"Hits."`
		Depth   atomic.Int64 `metric:"wsgate_test_depth" help:"Depth."`
		Private atomic.Int64 `metric:"-"`
		hidden  atomic.Int64
		Name    string
	}
	var g good
	g.Hits.Add(3)
	g.Depth.Add(-2)
	g.hidden.Add(1)
	c, err := newStatsCollector(&g)
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP wsgate_test_depth Depth.
# TYPE wsgate_test_depth gauge
wsgate_test_depth -2
# HELP wsgate_test_hits_total Hits.
# TYPE wsgate_test_hits_total counter
wsgate_test_hits_total 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	g.Hits.Add(1_000_000)
	want = "# HELP wsgate_test_hits_total Hits.\n# TYPE wsgate_test_hits_total counter\nwsgate_test_hits_total 1.000003e+06\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "wsgate_test_hits_total"); err != nil {
		t.Fatalf("after Add: %v", err)
	}

	type untagged struct {
		Known atomic.Int64 `metric:"wsgate_known_total" help:"Known."`
		Fresh atomic.Int64
	}
	_, err = newStatsCollector(&untagged{})
	if err == nil || !strings.Contains(err.Error(), "untagged.Fresh") {
		t.Fatalf("untagged counter: err %v, want one naming untagged.Fresh", err)
	}
	type noHelp struct {
		X atomic.Int64 `metric:"wsgate_x_total"`
	}
	if _, err := newStatsCollector(&noHelp{}); err == nil {
		t.Fatal("a metric without help text was accepted")
	}
	if _, err := newStatsCollector(good{}); err == nil {
		t.Fatal("a struct value (not a pointer) was accepted")
	}
}
