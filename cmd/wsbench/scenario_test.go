package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/report"
	"github.com/wsgate/wsgate/bench/harness/results"
)

func testEnv() (env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return env{stdout: &out, stderr: &errb, log: slog.New(slog.NewTextHandler(&errb, nil))}, &out, &errb
}

// TestScenarioFlagErrors: bad flags exit 2 before any server starts.
func TestScenarioFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"idle", "--target", "apache"},
		{"idle", "--conns", "10,-5"},
		{"idle", "stray"},
		{"fanout", "--modes", "rate,trickle"},
		{"fanout", "--channels", "0"},
		{"fanout", "--broker", "kafka"},
		{"churn", "--rounds", "0"},
		{"slow", "--slow-share", "1.5"},
		{"all", "--scenarios", "idle,nap"},
		{"project", "--conns", "0"},
		{"project", "--json", "/nonexistent/results.json"},
		{"report", "--json", "/nonexistent/results.json"},
		{"idle", "--wsgate-bin", "/nonexistent/wsgate"},
	} {
		e, _, errb := testEnv()
		if code := run(e, args); code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr: %s", args, code, errb)
		}
	}
	e, out, _ := testEnv()
	if code := run(e, []string{"idle", "-h"}); code != 0 || out.Len() != 0 {
		t.Errorf("idle -h: exit %d", code)
	}
}

func TestIntList(t *testing.T) {
	var l intList
	if err := l.Set("1000, 5000,19000"); err != nil || l.String() != "1000,5000,19000" {
		t.Fatalf("%v %v", l, err)
	}
	for _, bad := range []string{"", "a", "0", "1,,2"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLinkFloor(t *testing.T) {
	r := &results.Run{}
	r.Design(results.Wsgate).Fanout = []*results.Fanout{{Modes: []*results.FanoutMode{{Mode: modeRate, CPUUsPerDelivery: 7}, {Mode: modeBurst, CPUUsPerDelivery: 1}}}}
	r.Design(results.Floor).Fanout = []*results.Fanout{{Modes: []*results.FanoutMode{{Mode: modeRate, CPUUsPerDelivery: 5}, {Mode: modeBurst, CPUUsPerDelivery: 4}}}}
	linkFloor(r)
	m := r.Find(results.Wsgate).Fanout[0].Modes
	if m[0].CPUVsFloor != 1.4 || m[1].CPUVsFloor != 0.25 {
		t.Fatalf("%v %v", m[0].CPUVsFloor, m[1].CPUVsFloor)
	}
}

func TestFindWsgate(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "wsbench")
	if _, err := findWsgate("", self); err == nil && os.Getenv("PATH") == "" {
		t.Fatal("found a wsgate nowhere")
	}
	beside := filepath.Join(dir, "wsgate")
	if err := os.WriteFile(beside, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findWsgate("", self); err != nil || got != beside {
		t.Fatalf("beside: %q %v", got, err)
	}
	if got, err := findWsgate(beside, "/elsewhere/wsbench"); err != nil || got != beside {
		t.Fatalf("flag: %q %v", got, err)
	}
}

// buildBinaries builds wsbench and wsgate side by side in a temporary
// directory (wsbench finds wsgate beside itself and runs the naive server
// and the floor by re-executing itself).
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on $PATH to build the binaries with")
	}
	for _, pkg := range []string{"wsbench", "wsgate"} {
		args := []string{"build", "-o", filepath.Join(dir, pkg)}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goBin, append(args, "./cmd/"+pkg)...)
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir
}

// TestSmokeIdleSubscribed: --subscribe subscribes every connection of
// every step, and the slopes say so.
func TestSmokeIdleSubscribed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wsgate and runs a server")
	}
	wsgate := buildWsgate(t)
	jsonPath := filepath.Join(t.TempDir(), "idle.json")
	e, out, errb := testEnv()
	if code := run(e, []string{"idle", "--target", "wsgate", "--wsgate-bin", wsgate, "--conns", "50,120,200",
		"--settle", "100ms", "--cpu-window", "1s", "--subscribe", "all", "--floor=false", "--json", jsonPath}); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	r, err := results.Read(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	idle := r.Find(results.Wsgate).Idle
	if len(r.Problems) > 0 || idle == nil || idle.Channel != "all" || idle.Subscribed != 200 {
		t.Fatalf("problems %q, idle %+v", r.Problems, idle)
	}
	if !strings.Contains(out.String(), "each subscribed to channel all") {
		t.Errorf("the slopes' title does not say the connections were subscribed:\n%s", out)
	}
}

// TestSmokeAll runs "wsbench all --target both" at toy sizes: every
// scenario against both servers and the floor, the JSON, the report and
// the projection, end to end through real processes.
func TestSmokeAll(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs servers")
	}
	bin := buildBinaries(t)
	work := t.TempDir()
	jsonPath, reportDir := filepath.Join(work, "r.json"), filepath.Join(work, "report")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "wsbench"), "all", "--target", "both",
		"--idle-conns", "50,100,200", "--settle", "100ms", "--cpu-window", "1s", "--ping-interval", "400ms",
		"--fanout-subs", "200", "--many-channels", "10", "--duration", "1s", "--bursts", "2",
		"--churn-conns", "200", "--churn-rounds", "2",
		"--slow-subs", "100", "--slow-phase", "500ms",
		"--json", jsonPath, "--report", reportDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wsbench all: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	r, err := results.Read(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) > 0 {
		t.Fatalf("problems: %q", r.Problems)
	}
	for _, name := range []string{results.Wsgate, results.Naive} {
		d := r.Find(name)
		if d == nil || d.Idle == nil || d.Churn == nil || d.Slow == nil || len(d.Fanout) != 2 {
			t.Fatalf("%s: missing scenarios: %+v", name, d)
		}
		// What the machinery must see at any size: one fd per connection,
		// and the goroutine model of each design.
		if f := d.Idle.FDsPerConn; f < 0.95 || f > 1.05 {
			t.Errorf("%s: fds/conn %.3f", name, f)
		}
		wantG := map[string]float64{results.Wsgate: 0, results.Naive: 2}[name]
		if g := d.Idle.GoroutinesPerConn; g < wantG-0.05 || g > wantG+0.05 {
			t.Errorf("%s: goroutines/conn %.3f, want %v", name, g, wantG)
		}
		for _, f := range d.Fanout {
			for _, m := range f.Modes {
				if m.Delivered != m.ExpectedDeliveries || m.Delivered == 0 || m.LatencyMs.Samples != uint64(m.Delivered) {
					t.Errorf("%s %s %s: delivered %d of %d", name, f.Variant, m.Mode, m.Delivered, m.ExpectedDeliveries)
				}
			}
		}
		for _, rd := range d.Churn.Rounds {
			if rd.Connected != 200 {
				t.Errorf("%s churn: %+v", name, rd)
			}
		}
		if d.Slow.WithSlow.Delivered == 0 || len(d.Slow.RSS) == 0 {
			t.Errorf("%s slow: %+v", name, d.Slow)
		}
	}
	fl := r.Find(results.Floor)
	if fl == nil || len(fl.Fanout) != 1 || len(fl.Fanout[0].Modes) != 3 {
		t.Fatalf("floor: %+v", fl)
	}
	// The heartbeat floor pinged the largest idle count and read every
	// pong; each design's CPU per ping is related to it.
	if fl.Idle == nil || fl.Idle.IdleCPU == nil {
		t.Fatalf("heartbeat floor: %+v", fl.Idle)
	}
	if c := fl.Idle.IdleCPU; c.Conns != 200 || c.Pings == 0 || c.CPUUsPerPing <= 0 {
		t.Fatalf("heartbeat floor: %+v", *c)
	}
	for _, name := range []string{results.Wsgate, results.Naive} {
		if c := r.Find(name).Idle.IdleCPU; c == nil || c.Pings == 0 || c.CPUVsFloor <= 0 {
			t.Errorf("%s idle CPU not related to the heartbeat floor: %+v", name, c)
		}
	}
	if len(r.Projection) != 2 {
		t.Fatalf("projection: %+v", r.Projection)
	}
	for _, want := range []string{"Idle connections", "Heartbeat floor", "Fan-out, one channel", "Fan-out, many channels", "Connection storm", "Slow consumers", "Projected to"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	readme, err := os.ReadFile(filepath.Join(reportDir, "README.md"))
	if err != nil || !strings.Contains(string(readme), report.BeginMarker) {
		t.Fatalf("report: %v", err)
	}
	for _, c := range []string{report.ChartIdleMemory, report.ChartFanoutCDF, report.ChartSlowRSS} {
		if _, err := os.Stat(filepath.Join(reportDir, "charts", c)); err != nil {
			t.Error(err)
		}
	}

	// project reads the JSON back.
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "wsbench"), "project", "--conns", "1000000", "--json", jsonPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1,000,000") {
		t.Fatalf("project: %v\n%s", err, out)
	}
	var anyJSON map[string]any
	raw, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(raw, &anyJSON); err != nil {
		t.Fatal(err)
	}
}
