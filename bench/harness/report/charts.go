package report

import (
	"maps"
	"strings"

	"github.com/wsgate/wsgate/bench/harness/chart"
	"github.com/wsgate/wsgate/bench/harness/results"
)

// Chart file names.
const (
	ChartIdleMemory = "idle-memory.svg"
	ChartFanoutCDF  = "fanout-latency-cdf.svg"
	ChartSlowRSS    = "slow-rss.svg"
)

// colors per design: one hue each, a lighter shade for secondary series.
var colors = map[string][2]string{
	results.Wsgate:     {"#1f77b4", "#9ecae1"},
	results.Naive:      {"#d62728", "#fc9272"},
	results.Centrifugo: {"#2ca02c", "#a1d99b"},
	results.Floor:      {"#555555", "#aaaaaa"},
}

const mib = 1 << 20

// Charts returns the SVG charts the run has data for, by file name.
func Charts(run *results.Run) map[string]string {
	out := map[string]string{}
	if c, ok := idleChart(run); ok {
		out[ChartIdleMemory] = c.SVG()
	}
	if c, ok := fanoutChart(run); ok {
		out[ChartFanoutCDF] = c.SVG()
	}
	if c, ok := slowChart(run); ok {
		out[ChartSlowRSS] = c.SVG()
	}
	maps.Copy(out, millionCharts(run))
	return out
}

// idleChart: RSS and Go heap against connections, with the RSS fit.
func idleChart(run *results.Run) (chart.Chart, bool) {
	c := chart.Chart{Title: "Server memory vs idle connections", XLabel: "connections", YLabel: "MiB"}
	for _, d := range present(run, func(d *results.Design) bool { return d.Idle != nil && len(d.Idle.Fits) > 0 }) {
		var rss, heap, fitted []chart.XY
		maxN := 0
		for _, p := range d.Idle.Points {
			rss = append(rss, chart.XY{X: float64(p.Conns), Y: float64(p.RSSBytes) / mib})
			heap = append(heap, chart.XY{X: float64(p.Conns), Y: float64(p.HeapInuseBytes) / mib})
			maxN = max(maxN, p.Conns)
		}
		l := d.Idle.Fits[results.FitRSS]
		for _, x := range []float64{0, float64(maxN)} {
			fitted = append(fitted, chart.XY{X: x, Y: l.At(x) / mib})
		}
		col := colors[d.Design]
		c.Series = append(c.Series,
			chart.Series{Name: d.Design + " RSS", Color: col[0], Points: rss, Markers: true},
			chart.Series{Name: d.Design + " RSS fit", Color: col[0], Points: fitted, Dashed: true},
			chart.Series{Name: d.Design + " Go heap", Color: col[1], Points: heap, Markers: true},
		)
	}
	return c, len(c.Series) > 0
}

// fanoutChart: publish→delivery latency CDFs of the first variant, fixed
// rate solid and burst dashed, for every design and the floor.
func fanoutChart(run *results.Run) (chart.Chart, bool) {
	c := chart.Chart{Title: "Fan-out: publish → delivery latency (CDF)", XLabel: "latency (ms, log scale)",
		YLabel: "fraction of deliveries", LogX: true, YMin: 0, YMax: 1}
	for _, name := range withFloor {
		d := run.Find(name)
		if d == nil || len(d.Fanout) == 0 {
			continue
		}
		// The first variant of each design: the single-channel layout
		// when it ran (the floor has only that one).
		f := d.Fanout[0]
		if name != results.Floor && !strings.Contains(c.Title, ",") {
			c.Title += ", " + f.Variant
		}
		for _, m := range f.Modes {
			if len(m.LatencyMs.CDF) == 0 || m.Mode == "burst-coalesced" {
				continue
			}
			pts := make([]chart.XY, len(m.LatencyMs.CDF))
			for i, p := range m.LatencyMs.CDF {
				pts[i] = chart.XY{X: p.Ms, Y: p.Frac}
			}
			c.Series = append(c.Series, chart.Series{Name: name + " " + m.Mode, Color: colors[name][0],
				Points: pts, Step: true, Dashed: m.Mode != "rate"})
		}
	}
	return c, len(c.Series) > 0
}

// slowChart: server RSS over the slow-consumer scenario.
func slowChart(run *results.Run) (chart.Chart, bool) {
	c := chart.Chart{Title: "Server RSS with non-reading subscribers", XLabel: "seconds (baseline, then with slow subscribers)", YLabel: "MiB"}
	for _, d := range present(run, func(d *results.Design) bool { return d.Slow != nil && len(d.Slow.RSS) > 0 }) {
		pts := make([]chart.XY, len(d.Slow.RSS))
		for i, s := range d.Slow.RSS {
			pts[i] = chart.XY{X: s.T, Y: float64(s.Bytes) / mib}
		}
		c.Series = append(c.Series, chart.Series{Name: d.Design, Color: colors[d.Design][0], Points: pts})
	}
	return c, len(c.Series) > 0
}
