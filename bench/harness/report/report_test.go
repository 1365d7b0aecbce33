package report

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/harness/results"
)

// sampleRun has every scenario for the three designs and the floor.
func sampleRun(t *testing.T) *results.Run {
	t.Helper()
	r := results.NewRun("wsbench all", procfs.Machine{CPUs: 2, Model: "Test CPU", Kernel: "6.1", GoVersion: "go1.26"}, time.Unix(0, 0))
	var h hist.Hist
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, d := range []struct {
		name           string
		rss, gor, cpuD float64
	}{{results.Wsgate, 800, 0, 3}, {results.Naive, 20000, 2, 6}, {results.Centrifugo, 40000, 2, 5}} {
		idle := &results.Idle{IdleCPU: &results.IdleCPU{Conns: 19000, PingInterval: "25s", WindowS: 25, CPUS: 0.1, PctCorePer10k: 0.021}}
		for _, n := range []int{0, 1000, 5000, 19000} {
			idle.Points = append(idle.Points, results.IdlePoint{Conns: n, RSSBytes: int64(10<<20 + d.rss*float64(n)),
				HeapInuseBytes: int64(n * 300), Goroutines: int(8 + d.gor*float64(n)), Threads: 9, FDs: 10 + n,
				KernelSlabBytes: int64(100<<20 + 8200*n)})
		}
		if err := results.FitIdle(idle); err != nil {
			t.Fatal(err)
		}
		des := r.Design(d.name)
		des.Idle = idle
		des.Fanout = []*results.Fanout{{Variant: "one channel", Subs: 10000, Channels: 1, PushBytes: 64.5, Modes: []*results.FanoutMode{
			{Mode: "rate", Rate: 4, Delivered: 400000, ExpectedDeliveries: 400000, CPUUsPerDelivery: d.cpuD, CPUVsFloor: d.cpuD / 6, LatencyMs: results.LatencyOf(&h, 20)},
			{Mode: "burst", Burst: 20, Bursts: 5, Delivered: 1000000, ExpectedDeliveries: 1000000, CPUUsPerDelivery: d.cpuD / 2, WritesPerDelivery: 0.05, LatencyMs: results.LatencyOf(&h, 20)},
		}}}
		des.Churn = &results.Churn{Conns: 19000, AcceptedPerSec: 30000 - d.rss/4, ListenOverflows: int64(d.gor) * 10, Rounds: []results.ChurnRound{{Connected: 19000, ConnPerSec: 30000, HandshakeMs: results.Percentiles{P50: 10, P99: 90}}}}
		des.Slow = &results.Slow{Readers: 1800, Slow: 200, PayloadBytes: 4096, Rate: 25, PhaseS: 15, BaseRSSBytes: 20 << 20, PeakRSSBytes: 30 << 20,
			RSS: []results.RSSSample{{T: 0, Bytes: 20 << 20}, {T: 1, Bytes: 30 << 20}}}
	}
	r.Design(results.Floor).Fanout = []*results.Fanout{{Variant: "floor (every message to every socket)", Subs: 10000, Channels: 1, Modes: []*results.FanoutMode{
		{Mode: "rate", CPUUsPerDelivery: 6, LatencyMs: results.LatencyOf(&h, 20)},
		{Mode: "burst-coalesced", Burst: 20, Bursts: 5, CPUUsPerDelivery: 0.5},
	}}}
	for _, d := range r.Designs {
		if p, ok := results.Project(d, 1000000); ok {
			r.Projection = append(r.Projection, p)
		}
	}
	r.Problem("naive: something odd\nwith a second line")
	return r
}

func TestText(t *testing.T) {
	out := Text(sampleRun(t))
	for _, want := range []string{
		"Idle connections: least-squares slopes over 1,000, 5,000, 19,000 connections",
		"RSS (bytes)", "800", "20,000", "0.04×",
		"Fan-out, one channel: 10,000 subscribers on 1 channel, 64-byte pushes",
		"burst 5×20 coalesced", "rate 4/s", "0.50×",
		"Connection storm: 19,000 clients dialing at once, 1 round",
		"Slow consumers: 1,800 readers + 200 non-reading subscribers",
		"Projected to 1,000,000 idle connections",
		"naive: something odd (…)",
		// The third design: a column and a ratio against wsgate everywhere.
		"wsgate / naive", "wsgate / centrifugo", "40,000", "0.02×",
		"wsgate against Centrifugo: the headline ratios",
		"RSS per idle connection (bytes)", "CPU µs per delivery, rate 4/s, one channel", "storm: listen overflows",
		"Mean push size received (bytes, without the 2-byte WebSocket header): wsgate 64.5, naive 64.5, centrifugo 64.5",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if strings.Contains(out, "with a second line") {
		t.Error("multi-line problem not cut")
	}
	// Every table has a centrifugo column or rows.
	for _, tb := range tables(sampleRun(t)) {
		if !strings.Contains(tb.text(), "centrifugo") {
			t.Errorf("table %q has no centrifugo row", tb.title)
		}
	}
}

// TestPeerTable: the headline ratios need wsgate and Centrifugo.
func TestPeerTable(t *testing.T) {
	r := sampleRun(t)
	tb := peerTable(r)
	if tb == nil || len(tb.rows) != 8 {
		t.Fatalf("peer table %+v", tb)
	}
	if got := tb.rows[0]; got[1] != "800" || got[2] != "40,000" || got[3] != "0.020× (1/50)" {
		t.Fatalf("RSS row %q", got)
	}
	r.Designs = slices.DeleteFunc(r.Designs, func(d *results.Design) bool { return d.Design == results.Centrifugo })
	if peerTable(r) != nil {
		t.Fatal("peer table without centrifugo")
	}
}

func TestWriteSplicesREADME(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	hand := "# bench\n\nMethodology written by hand.\n\n" + BeginMarker + "\nold results\n" + EndMarker + "\n\n## After\n"
	if err := os.WriteFile(readme, []byte(hand), 0o644); err != nil {
		t.Fatal(err)
	}
	run := sampleRun(t)
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(readme)
	doc := string(b)
	for _, want := range []string{"Methodology written by hand.", "## After", "## Results", "Test CPU",
		"](charts/" + ChartIdleMemory + ")", "](charts/" + ChartFanoutCDF + ")", "](charts/" + ChartSlowRSS + ")", "| wsgate |"} {
		if !strings.Contains(doc, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	if strings.Contains(doc, "old results") || strings.Count(doc, BeginMarker) != 1 {
		t.Error("old section not replaced")
	}
	for _, name := range []string{ChartIdleMemory, ChartFanoutCDF, ChartSlowRSS} {
		svg, err := os.ReadFile(filepath.Join(dir, "charts", name))
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(strings.NewReader(string(svg)))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	// A second write is idempotent.
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(readme)
	if string(b2) != doc {
		t.Error("second write changed the README")
	}
}

func TestSpliceWithoutMarkers(t *testing.T) {
	got := Splice("# x\n\ntext\n\n", "## Results\n")
	want := "# x\n\ntext\n\n" + BeginMarker + "\n## Results\n" + EndMarker + "\n"
	if got != want {
		t.Fatalf("got %q", got)
	}
	// A new report directory gets a README of its own.
	dir := t.TempDir()
	if err := Write(dir, results.NewRun("wsbench idle", procfs.Machine{}, time.Unix(0, 0))); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	if !strings.HasPrefix(string(b), "# wsbench results") {
		t.Fatalf("%s", b)
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Num(1234567.891, 2), "1,234,567.89"}, {Num(-1234, 0), "-1,234"}, {Num(0.4, 0), "0"}, {Num(999, 0), "999"},
		{bytesIEC(812), "812 B"}, {bytesIEC(20 << 10), "20.0 KiB"}, {bytesIEC(3 << 30), "3.00 GiB"}, {bytesIEC(5 << 20), "5.0 MiB"},
		{ratio(1, 4), "0.25×"}, {ratio(40, 2), "20.0×"}, {ratio(1, 0), dash},
		{fineRatio(585, 34867), "0.017× (1/60)"}, {fineRatio(1, 4), "0.25×"}, {fineRatio(0, 4), "0.00×"},
		{Ms(0.123), "0.12"}, {Ms(12.34), "12.3"}, {Ms(123.4), "123"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestTableMarkdown: a scenario's table prints with the report's writer,
// the title bold, the first column left-aligned, the note under it.
func TestTableMarkdown(t *testing.T) {
	tb := &Table{Title: "T", Header: []string{"a", "b"}, Note: "n."}
	tb.Add("x", "1")
	want := "**T**\n\n| a | b |\n|---|---:|\n| x | 1 |\n\nn.\n\n"
	if got := tb.Markdown(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	tb.Note = ""
	if got := tb.Markdown(); got != "**T**\n\n| a | b |\n|---|---:|\n| x | 1 |\n\n" {
		t.Errorf("without a note: %q", got)
	}
	if Ms(0.123) != "0.12" || Ms(12.34) != "12.3" || Ms(123.4) != "123" {
		t.Error(Ms(0.123), Ms(12.34), Ms(123.4))
	}
}
