package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/centrifugo"
	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/results"
)

func TestDesigns(t *testing.T) {
	for target, want := range map[string][]string{
		"both":       {results.Wsgate, results.Naive},
		"all":        {results.Wsgate, results.Naive, results.Centrifugo},
		"centrifugo": {results.Centrifugo},
		"wsgate":     {results.Wsgate},
	} {
		got, err := (&commonFlags{target: target}).designs()
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("--target %s: %v %v, want %v", target, got, err, want)
		}
	}
	if _, err := (&commonFlags{target: "everything"}).designs(); err == nil {
		t.Error("unknown target accepted")
	}
}

func TestTargetsDiffer(t *testing.T) {
	if _, ok := dialect(results.Centrifugo).(centrifugo.Dialect); !ok {
		t.Error("centrifugo does not speak its own protocol")
	}
	for _, d := range []string{results.Wsgate, results.Naive} {
		if _, ok := dialect(d).(drive.Wsgate); !ok {
			t.Errorf("%s does not speak wsgate's protocol", d)
		}
	}
	m := map[string]float64{"wsgate_conns_open": 3, `centrifugo_client_connections_inflight{transport="websocket"}`: 4,
		"wsgate_slow_consumers_total": 2, "wsgate_pong_timeouts_total": 1,
		`centrifugo_client_num_server_disconnects{code="3008"}`: 5}
	if connsOpen(results.Wsgate, m) != 3 || connsOpen(results.Centrifugo, m) != 4 {
		t.Error("open connections read from the wrong metric")
	}
	if slowClosed(results.Naive, nil, m) != 3 || slowClosed(results.Centrifugo, nil, m) != 5 {
		t.Error("slow closes read from the wrong metrics")
	}
}

// runWsbench runs the built wsbench with extra environment and returns
// its exit code and the run's JSON.
func runWsbench(t *testing.T, bin string, env []string, args ...string) (int, *results.Run, string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "wsbench"), append(args, "--json", jsonPath)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("wsbench %v: %v\n%s", args, err, stderr.String())
	}
	r, err := results.Read(jsonPath)
	if err != nil {
		t.Fatalf("wsbench %v: exit %d, no JSON (%v)\nstdout:\n%s\nstderr:\n%s", args, code, err, stdout.String(), stderr.String())
	}
	return code, r, stdout.String()
}

// TestCentrifugoUnavailable: when the module cannot be fetched, the run
// says so and measures the other targets.
func TestCentrifugoUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs servers")
	}
	bin := buildBinaries(t)
	// A go command that fails like a host without the module proxy, and an
	// empty cache.
	fakeBin := t.TempDir()
	script := "#!/bin/sh\necho 'go: module lookup disabled by GOPROXY=off' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(fakeBin, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	code, r, _ := runWsbench(t, bin, []string{"PATH=" + fakeBin + ":" + os.Getenv("PATH"), "XDG_CACHE_HOME=" + t.TempDir()},
		"churn", "--target", "all", "--conns", "100", "--rounds", "1")
	if code != 1 {
		t.Errorf("exit %d, want 1 (a problem)", code)
	}
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "module lookup disabled") || !strings.Contains(r.Problems[0], "goes on without it") {
		t.Fatalf("problems %q", r.Problems)
	}
	for _, d := range []string{results.Wsgate, results.Naive} {
		if x := r.Find(d); x == nil || x.Churn == nil || x.Churn.Rounds[0].Connected != 100 {
			t.Errorf("%s was not measured: %+v", d, x)
		}
	}
	if r.Find(results.Centrifugo) != nil {
		t.Error("centrifugo has results")
	}
}

// TestSmokeCentrifugo runs every scenario against the cached Centrifugo
// release at toy sizes (skipped when it is not in the cache: wsbench
// installs it on demand, a test does not).
func TestSmokeCentrifugo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs servers")
	}
	cache, err := centrifugo.CacheDir()
	if err != nil {
		t.Skip(err)
	}
	if _, ok := centrifugo.Installed(context.Background(), cache); !ok {
		t.Skipf("Centrifugo %s is not in %s (wsbench --target centrifugo installs it)", centrifugo.Version, cache)
	}
	bin := buildBinaries(t)
	code, r, stdout := runWsbench(t, bin, nil, "all", "--target", "centrifugo",
		"--idle-conns", "50,100,200", "--settle", "100ms", "--cpu-window", "1s",
		"--fanout-subs", "200", "--many-channels", "10", "--duration", "1s", "--bursts", "2",
		"--churn-conns", "200", "--churn-rounds", "2",
		// Small slow-scenario messages: a race-built client on a loaded
		// host reads 16 KiB × 25/s × 90 readers slowly enough for
		// Centrifugo's 1 s write timeout to drop readers. Pings every 4 s:
		// the client must answer Centrifugo's pings for the run to pass.
		"--slow-subs", "100", "--slow-phase", "2s", "--slow-payload", "2048", "--ping-interval", "4s")
	// Centrifugo drops readers its 1 s write timeout finds slow, which a
	// loaded host causes: that is a finding the report carries, not a
	// harness failure. Any other problem is.
	for _, p := range r.Problems {
		if !strings.HasPrefix(p, "slow centrifugo: readers got") {
			t.Fatalf("exit %d, problems %q", code, r.Problems)
		}
	}
	d := r.Find(results.Centrifugo)
	if d == nil || d.Idle == nil || d.Churn == nil || d.Slow == nil || len(d.Fanout) != 2 {
		t.Fatalf("missing scenarios: %+v", d)
	}
	// Two goroutines per connection (reader and writer): the idle
	// connections are clients, not just upgraded sockets.
	if g := d.Idle.GoroutinesPerConn; g < 1.5 || g > 2.5 {
		t.Errorf("goroutines/conn %.3f", g)
	}
	if f := d.Idle.FDsPerConn; f < 0.95 || f > 1.05 {
		t.Errorf("fds/conn %.3f", f)
	}
	for _, f := range d.Fanout {
		if f.PushBytes < 70 || f.PushBytes > 90 {
			t.Errorf("%s: mean push %v bytes", f.Variant, f.PushBytes)
		}
		for _, m := range f.Modes {
			if m.Delivered != m.ExpectedDeliveries || m.Delivered == 0 || m.PublishErrors != 0 {
				t.Errorf("%s %s: delivered %d of %d", f.Variant, m.Mode, m.Delivered, m.ExpectedDeliveries)
			}
		}
	}
	if d.Slow.WithSlow.Delivered != d.Slow.WithSlow.ExpectedDeliveries || d.Slow.WithSlow.Delivered == 0 {
		t.Errorf("slow: %+v", d.Slow.WithSlow)
	}
	if !strings.Contains(stdout, "centrifugo") {
		t.Error("no centrifugo in the tables")
	}
}
