package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestApplyGCPercent: the default applies without GOGC, and GOGC wins.
func TestApplyGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	log := slog.New(slog.DiscardHandler)
	applyGCPercent(func(string) (string, bool) { return "", false }, log)
	if got := debug.SetGCPercent(77); got != defaultGCPercent {
		t.Fatalf("without GOGC: %d, want %d", got, defaultGCPercent)
	}
	applyGCPercent(func(k string) (string, bool) { return "77", k == "GOGC" }, log)
	if got := debug.SetGCPercent(100); got != 77 {
		t.Fatalf("with GOGC=77: %d, want 77 kept", got)
	}
}

// TestServeGCPercent: the running binary reports the GC percent in force
// on /metrics: the default, then GOGC's.
func TestServeGCPercent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildWsgate(t)
	for _, tc := range []struct {
		gogc string
		want float64
	}{{"", defaultGCPercent}, {"80", 80}} {
		env := withoutGOGC(os.Environ())
		if tc.gogc != "" {
			env = append(env, "GOGC="+tc.gogc)
		}
		debugAddr := testutil.FreeAddr(t)
		startServe(t, bin, env, debugAddr, "--listen", testutil.FreeAddr(t))
		got, err := gaugeValue("http://"+debugAddr+"/metrics", "go_gc_gogc_percent")
		if err != nil || got != tc.want {
			t.Errorf("GOGC=%q: go_gc_gogc_percent %v (%v), want %v", tc.gogc, got, err, tc.want)
		}
	}
}

// startServe runs `bin serve --debug-listen debugAddr args…` with env
// until the test ends, and returns its output once debugAddr is ready.
func startServe(t *testing.T, bin string, env []string, debugAddr string, args ...string) *testutil.SyncBuffer {
	t.Helper()
	var logs testutil.SyncBuffer
	cmd := exec.Command(bin, append([]string{"serve", "--debug-listen", debugAddr}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, debugAddr, &logs, 20*time.Second)
	return &logs
}

func withoutGOGC(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOGC=") {
			out = append(out, kv)
		}
	}
	return out
}

// gaugeValue reads one unlabelled gauge from a Prometheus text page.
func gaugeValue(url, name string) (float64, error) {
	m, err := metricOf(url, name)
	return m.GetGauge().GetValue(), err
}

// counterValue reads one unlabelled counter from a Prometheus text page.
func counterValue(url, name string) (float64, error) {
	m, err := metricOf(url, name)
	return m.GetCounter().GetValue(), err
}

// metricOf reads the one unlabelled metric of family name.
func metricOf(url, name string) (*dto.Metric, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	f, ok := families[name]
	if !ok || len(f.GetMetric()) != 1 {
		return nil, fmt.Errorf("%s: no single %s", url, name)
	}
	return f.GetMetric()[0], nil
}

// TestServeMemoryTrim: the running binary trims its heap (the debug line)
// after a surge of connections has come and gone, and never with the trim
// off. What a trim returns is internal/memtrim's test, and at scale
// bench/README.md's "A million on 2 cores".
func TestServeMemoryTrim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildWsgate(t)
	for _, tc := range []struct {
		interval string
		want     bool
	}{{"200ms", true}, {"0", false}} {
		debugAddr, addr := testutil.FreeAddr(t), testutil.FreeAddr(t)
		logs := startServe(t, bin, withoutGOGC(os.Environ()), debugAddr, "--listen", addr, "--echo",
			"--log-level", "debug", "--memory-trim-interval", tc.interval)
		const trimLine = "returned free heap to the OS"
		time.Sleep(time.Second) // the start's own garbage trimmed (or not)
		trimsBefore := strings.Count(logs.String(), trimLine)
		connectAndClose(t, "ws://"+addr+"/echo", 10000)
		trimmed := func() bool { return strings.Count(logs.String(), trimLine) > trimsBefore }
		deadline := time.Now().Add(10 * time.Second)
		for tc.want && !trimmed() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !tc.want {
			time.Sleep(time.Second) // five intervals of the other case
		}
		if got := trimmed(); got != tc.want {
			t.Fatalf("--memory-trim-interval %s: trimmed after the surge %v, want %v; log:\n%.2000s", tc.interval, got, tc.want, logs.String())
		}
		if !tc.want && trimsBefore > 0 {
			t.Fatalf("--memory-trim-interval 0 trimmed at the start")
		}
		trims, err := counterValue("http://"+debugAddr+"/metrics", "wsgate_memory_trims_total")
		if err != nil || (trims > 0) != tc.want {
			t.Errorf("--memory-trim-interval %s: wsgate_memory_trims_total %v (%v), want > 0: %v", tc.interval, trims, err, tc.want)
		}
	}
}

// connectAndClose upgrades n connections to url, all open at once, then
// closes them.
func connectAndClose(t *testing.T, url string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	const dialers = 16
	var wg sync.WaitGroup
	for d := range dialers {
		wg.Go(func() {
			for i := d; i < n; i += dialers {
				conns[i], _, _, errs[i] = ws.Dial(ctx, url)
			}
		})
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("connect: %v", err)
	}
}
