package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"

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
		var logs testutil.SyncBuffer
		debugAddr := testutil.FreeAddr(t)
		cmd := exec.Command(bin, "serve", "--listen", testutil.FreeAddr(t), "--debug-listen", debugAddr)
		cmd.Env = withoutGOGC(os.Environ())
		if tc.gogc != "" {
			cmd.Env = append(cmd.Env, "GOGC="+tc.gogc)
		}
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitReady(t, debugAddr, &logs, 20*time.Second)
		got, err := gaugeValue("http://"+debugAddr+"/metrics", "go_gc_gogc_percent")
		if err != nil || got != tc.want {
			t.Errorf("GOGC=%q: go_gc_gogc_percent %v (%v), want %v", tc.gogc, got, err, tc.want)
		}
	}
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
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	f, ok := families[name]
	if !ok || len(f.GetMetric()) != 1 {
		return 0, fmt.Errorf("%s: no single %s", url, name)
	}
	return f.GetMetric()[0].GetGauge().GetValue(), nil
}
