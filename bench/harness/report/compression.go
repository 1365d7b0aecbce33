package report

import (
	"fmt"
	"strings"

	"github.com/wsgate/wsgate/bench/harness/results"
)

// compressionRun is one fan-out run of the JSON document (fanout
// --compression): a design, plain or compressed one way.
type compressionRun struct {
	design string
	f      *results.Fanout
}

// compressionLabels name the ways of compressing in the table.
var compressionLabels = map[string]string{
	"":                               "none",
	results.CompressionShared:        "once per publication, shared frame",
	results.CompressionPrepared:      "once per publication (PreparedMessage)",
	results.CompressionPerConnection: "per connection (WriteMessage)",
}

// compressionRuns returns the document runs of the first document run's
// channel layout, design by design in report order; nil unless one of
// them compressed.
func compressionRuns(run *results.Run) []compressionRun {
	var out []compressionRun
	compressed := false
	for _, name := range compared {
		d := run.Find(name)
		if d == nil {
			continue
		}
		for _, f := range d.Fanout {
			if f.Document && (len(out) == 0 || f.Channels == out[0].f.Channels) {
				out = append(out, compressionRun{name, f})
				compressed = compressed || f.Compression != ""
			}
		}
	}
	if !compressed {
		return nil
	}
	return out
}

// plainOf returns design's uncompressed document run among runs.
func plainOf(runs []compressionRun, design string) *results.Fanout {
	for _, r := range runs {
		if r.design == design && r.f.Compression == "" {
			return r.f
		}
	}
	return nil
}

// compressionTable sets the runs of fanout --compression side by side,
// mode by mode: every design plain and compressed each way it was, CPU
// and bytes per delivery against its own plain run, and under it the
// ratios issue 14 sets goals for (wsgate compressed against its own plain
// run and against naive compressing per connection; against naive's
// PreparedMessage too).
func compressionTable(run *results.Run) *table {
	runs := compressionRuns(run)
	if runs == nil {
		return nil
	}
	f0 := runs[0].f
	t := &table{
		title: fmt.Sprintf("Compression: the JSON document to %s subscribers on %s, plain and permessage-deflate",
			Num(float64(f0.Subs), 0), plural(f0.Channels, "channel")),
		header: []string{"mode", "design", "compression", "CPU µs/delivery", "× own plain",
			"bytes on the wire/delivery", "latency p50 / p99 / p99.9 (ms)", "delivered"},
	}
	for _, mode := range []string{"rate", "burst"} {
		for _, r := range runs {
			m := r.f.Mode(mode)
			if m == nil {
				continue
			}
			own := dash
			if p := plainOf(runs, r.design); p != nil && r.f.Compression != "" && p.Mode(mode) != nil {
				own = ratio(m.CPUUsPerDelivery, p.Mode(mode).CPUUsPerDelivery)
			}
			t.add(modeLabel(m), r.design, compressionLabels[r.f.Compression], Num(m.CPUUsPerDelivery, 2), own,
				wireBytes(m), Ms(m.LatencyMs.P50)+" / "+Ms(m.LatencyMs.P99)+" / "+Ms(m.LatencyMs.P999),
				Num(float64(m.Delivered), 0)+" of "+Num(float64(m.ExpectedDeliveries), 0))
		}
		if n := compressionGoals(runs, mode); n != "" {
			t.notes = append(t.notes, n)
		}
	}
	t.notes = append(t.notes, "Issue 14's goals: wsgate's compressed CPU per delivery ≤ 1.3× its own plain run, "+
		"and ≤ 0.25× naive's compressed run, naive compressing per connection as gorilla's users do "+
		"(one deflate per subscriber per message). Naive with a PreparedMessage compresses once per publication, "+
		"like wsgate: the stronger baseline, a gorilla user who prepares each broadcast.")
	return t
}

// compressionGoals is the note of one mode: wsgate's compressed CPU per
// delivery over its plain run's and over each naive compressed run's.
func compressionGoals(runs []compressionRun, mode string) string {
	var w *results.FanoutMode
	for _, r := range runs {
		if r.design == results.Wsgate && r.f.Compression == results.CompressionShared {
			w = r.f.Mode(mode)
		}
	}
	if w == nil || w.CPUUsPerDelivery <= 0 {
		return ""
	}
	var parts []string
	if p := plainOf(runs, results.Wsgate); p != nil && p.Mode(mode) != nil {
		parts = append(parts, "its own plain run "+ratio(w.CPUUsPerDelivery, p.Mode(mode).CPUUsPerDelivery)+" (goal ≤ 1.3×)")
	}
	for _, kind := range []string{results.CompressionPerConnection, results.CompressionPrepared} {
		for _, r := range runs {
			if r.design != results.Naive || r.f.Compression != kind || r.f.Mode(mode) == nil {
				continue
			}
			s := "naive " + compressionLabels[kind] + " " + fineRatio(w.CPUUsPerDelivery, r.f.Mode(mode).CPUUsPerDelivery)
			if kind == results.CompressionPerConnection {
				s += " (goal ≤ 0.25×)"
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return modeLabel(w) + ": wsgate's compressed CPU per delivery over " + strings.Join(parts, "; over ") + "."
}

func wireBytes(m *results.FanoutMode) string {
	if m.WireBytesPerDelivery <= 0 {
		return dash
	}
	return Num(m.WireBytesPerDelivery, 1)
}
