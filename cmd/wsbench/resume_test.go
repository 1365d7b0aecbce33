package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/resume"
)

func TestResumeFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"resume", "--channels", "0"},
		{"resume", "--clients", "5", "--channels", "10"},
		{"resume", "--history-size", "0"},
		{"resume", "--rate", "0"},
		{"resume", "stray"},
	} {
		e, _, errb := testEnv()
		if code := run(e, args); code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr: %s", args, code, errb)
		}
	}
}

// buildWsgate builds wsgate the way buildBinaries does (same flags, so
// the build cache serves both).
func buildWsgate(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on $PATH to build wsgate with")
	}
	bin := filepath.Join(t.TempDir(), "wsgate")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/wsgate")...)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build wsgate: %v\n%s", err, out)
	}
	return bin
}

// TestSmokeResume runs the resume storm at a toy size, in process, against
// real gateways and a private redis-server: every client must recover.
func TestSmokeResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wsgate and runs servers")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH (make deps)")
	}
	wsgate := buildWsgate(t)
	var r resume.Result
	out := runOwnScenario(t, []string{"resume", "--wsgate-bin", wsgate,
		"--clients", "20", "--channels", "2", "--messages", "3", "--rate", "20",
		"--drain-window", "300ms", "--outage", "300ms", "--timeout", "30s"}, &r)
	if r.Recovered != 20 || r.Reconnected != 20 || r.TailComplete != 20 || r.Gaps != 0 || r.Duplicates != 0 {
		t.Fatalf("%+v", r)
	}
	if r.MissedTotal == 0 || r.Closes1001 != 20 {
		t.Errorf("nothing was missed, or the drain did not close with 1001: %+v", r)
	}
	if r.Redis == nil || r.Redis.Net["fcall"] == 0 {
		t.Errorf("no Redis calls counted: %+v", r.Redis)
	}
	if !strings.Contains(out, "20 of 20") {
		t.Errorf("table:\n%s", out)
	}
}

// runOwnScenario runs a scenario with a result of its own shape (resume,
// abuse) with --json, decodes the JSON's "result" into result and returns
// what it printed.
func runOwnScenario(t *testing.T, args []string, result any) string {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), args[0]+".json")
	e, out, errb := testEnv()
	if code := run(e, append(args, "--json", jsonPath)); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := struct {
		Result any `json:"result"`
	}{result}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestServerSpecBroker: both designs get the broker flags, and
// --redis-url only when it was given (each has its own default).
func TestServerSpecBroker(t *testing.T) {
	b := &bench{flags: commonFlags{broker: "redis", redisURL: "redis://127.0.0.1:7/0", pingInterval: time.Second}, wsgate: "wsgate", self: "wsbench"}
	for _, d := range []string{results.Wsgate, results.Naive} {
		spec, err := b.serverSpec(d)
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(spec.Args, " ")
		if !strings.Contains(args, "--broker redis") || !strings.Contains(args, "--redis-url redis://127.0.0.1:7/0") {
			t.Errorf("%s: %s", d, args)
		}
	}
	b.flags.redisURL = ""
	for _, d := range []string{results.Wsgate, results.Naive} {
		spec, _ := b.serverSpec(d)
		if args := strings.Join(spec.Args, " "); strings.Contains(args, "--redis-url") || !strings.Contains(args, "--broker redis") {
			t.Errorf("%s without a URL: %s", d, args)
		}
	}
}
