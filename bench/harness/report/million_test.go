package report

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/harness/results"
)

// millionRun is a million-scenario run: wsgate ramped, held and broadcast
// to, naive stopped by the memory floor.
func millionRun() *results.Run {
	r := results.NewRun("wsbench million", procfs.Machine{CPUs: 2, Model: "Test CPU", NofileLimit: 20000}, time.Unix(0, 0))
	var h hist.Hist
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * 10 * time.Millisecond)
	}
	timeline := func(n int) []results.MillionSample {
		var tl []results.MillionSample
		for i := 0; i <= 10; i++ {
			tl = append(tl, results.MillionSample{T: float64(i) * 10, Phase: "ramp", Conns: n * i / 10,
				ServerRSSBytes: int64(n*i/10) * 600, KernelSlabBytes: int64(n*i/10) * 10000, ClientRSSBytes: int64(n*i/10) * 1000})
		}
		return tl
	}
	r.Design(results.Wsgate).Million = &results.Million{Target: 1000000, Reached: 1000000, Upgraded: 1000000, RampS: 200, ConnPerSec: 5000, BaselinePctCore: 10,
		Layout:            results.MillionLayout{Servers: 53, ServerCap: 19900, MinPerServer: 18500, MaxPerServer: 19300, Clients: 51, Sources: 102, GOMAXPROCS: 1},
		Memory:            results.MillionMemory{Conns: 1000000, ServerRSSBytes: 700 << 20, ServerBaseRSSBytes: 100 << 20, KernelSlabBytes: 10 << 30},
		GCRun:             &results.MillionGC{Collections: 400, PauseP99Ms: 1.5, PauseMaxMs: 3},
		Hold:              &results.MillionHold{Conns: 1000000, WindowS: 60, PingInterval: "100s", Pings: 600000, ServerPctCore: 40, ServerCPUUsPerPingNet: 30, GC: results.MillionGC{Source: "test"}},
		Timeline:          timeline(1000000),
		CountersAfterRamp: map[string]float64{"wsgate_memory_trims_total": 2, "wsgate_memory_trimmed_bytes_total": 1 << 20},
		CountersAtEnd:     map[string]float64{"wsgate_memory_trims_total": 55, "wsgate_memory_trimmed_bytes_total": 300 << 20},
		Broadcasts: []results.MillionBroadcast{{Name: "one", Messages: 1, Conns: 1000000, Expected: 1000000, Delivered: 1000000,
			ConnsComplete: 1000000, CompletionMs: 41234, LatencyMs: results.LatencyOf(&h, 20)}}}
	r.Design(results.Naive).Million = &results.Million{Target: 1000000, Reached: 420000, StopReason: "memory: MemAvailable 5.99 GiB fell below the floor of 6.00 GiB",
		Layout: results.MillionLayout{Servers: 53}, Memory: results.MillionMemory{Conns: 420000, ServerRSSBytes: 9 << 30}, Timeline: timeline(420000)}
	r.Host = &results.Host{Restored: true, MemFloorBytes: 4 << 30, Sysctls: []results.SysctlChange{{Key: "net.core.somaxconn", Old: "4096", New: "65535"}},
		Doctor: &results.Doctor{Command: "wsgate doctor", Verdict: "READY for 1000000 connections in 53 processes (up to 18868 each)"}}
	return r
}

// With a 25 s heartbeat the idle CPU is measured, not projected; with the
// kernel's keepalive there are no pings to project from.
func TestMillionHeartbeat25(t *testing.T) {
	run := millionRun()
	h := run.Design(results.Wsgate).Million.Hold
	h.Heartbeat, h.PingInterval, h.Pings, h.ServerPctCore, h.HostPctCore, h.HostSoftirqPctCore = "tcp", "25s", 0, 9.5, 80, 3
	h.LateWindowS, h.ServerPctCoreLate, h.HostPctCoreLate = 30, 4.3, 70
	run.Design(results.Wsgate).Million.BaselineHostPctCore = 20
	text := Text(run)
	for _, want := range []string{"kernel TCP keepalive every 25s, no WebSocket pings", "9.5 % of a core (measured; the kernel's probes are in the host row)",
		"80.0 % of a core (3.0 in softirq); 20.0 with no connection", "4.3 % of a core over the last 30 s (host: 70.0)"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	h.Heartbeat, h.Pings, h.ServerPctCore = "ping", 2400000, 140
	if text := Text(run); !strings.Contains(text, "140.0 % of a core (measured)") {
		t.Errorf("a 25 s ping run's figure is its measured CPU:\n%s", text)
	}
	h.Heartbeat, h.PingInterval, h.Pings = "tcp", "100s", 0
	if text := Text(run); strings.Contains(text, "(measured") || strings.Contains(text, "projected") {
		t.Errorf("a 100 s keepalive run has no 25 s figure to show:\n%s", text)
	}
}

// A million run writes its own README section and charts and leaves the
// main results section alone; the terminal shows its tables.
func TestMillionSection(t *testing.T) {
	run := millionRun()
	text := Text(run)
	for _, want := range []string{"A million connections: ramp and memory", "1,000,000", "memory: MemAvailable", "Held idle, pinged",
		"41,234 ms", "net.core.somaxconn", "18,500–19,300", "2 / 55 (300.0 MiB)",
		"WebSocket pings every 100s",
		"130.0 % of a core, projected (the baseline + connections ÷ 25 s × 30.0 µs net per ping)"} { // 10 % + 40,000 pings/s × 30 µs
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	dir := t.TempDir()
	doc := "# bench\n\n" + BeginMarker + "\nthe main results\n" + EndMarker + "\n\nhand-written tail\n"
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second write replaces the section instead of adding one
		if err := Write(dir, run); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.Contains(got, "the main results") || !strings.Contains(got, "hand-written tail") ||
		strings.Count(got, MillionBeginMarker) != 1 || !strings.Contains(got, "## A million connections") {
		t.Errorf("README after Write:\n%s", got)
	}
	for _, name := range []string{ChartMillionConns, ChartMillionMemory} {
		svg, err := os.ReadFile(filepath.Join(dir, "charts", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(svg, new(struct{})); err != nil {
			t.Errorf("%s is not XML: %v", name, err)
		}
		if !strings.Contains(got, "charts/"+name) {
			t.Errorf("README does not show %s", name)
		}
	}
	// A main-scenario run still writes only the main section.
	if hasMillion(sampleRun(t)) {
		t.Error("a run without million results has a million section")
	}
}
