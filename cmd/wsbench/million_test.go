package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/report"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/million"
	"github.com/wsgate/wsgate/sysctl"
)

func TestMillionFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"million", "--target", "apache"},
		{"million", "--conns", "0"},
		{"million", "--mem-floor", "lots"},
		{"million", "stray"},
		{"million-client", "--conns", "1", "stray"},
	} {
		e, _, errb := testEnv()
		if code := run(e, args); code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr: %s", args, code, errb)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"4GiB": 4 << 30, "512MiB": 512 << 20, "1.5GiB": 3 << 29, "123": 123, "8KiB": 8 << 10} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, int64(b), err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1GiB", "4 TB"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	b := byteSize(6 << 30)
	if s := b.String(); s != "6GiB" {
		t.Errorf("String() = %q", s)
	}
}

// fakeSysctlTree copies this host's values of every key the profiles set,
// and the files `wsgate doctor` reads, into a temporary tree: the smoke
// test applies and restores sysctls there, never on the host.
func fakeSysctlTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	copyFile := func(src, rel string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("/proc/self/limits", "proc/self/limits")
	copyFile("/proc/meminfo", "proc/meminfo")
	for _, name := range million.Profiles {
		b, err := sysctl.Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		settings, err := sysctl.ParseConf(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range settings {
			rel := filepath.Join("proc", "sys", strings.ReplaceAll(s.Key, ".", "/"))
			if _, err := os.Stat("/" + rel); err == nil {
				copyFile("/"+rel, rel)
			}
		}
	}
	return root
}

// treeFiles returns every file of a tree by path.
func treeFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = strings.Join(strings.Fields(string(b)), " ")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSmokeMillion runs the whole million scenario at 3,000 connections
// with a cap of 1,000 open files per process (4 servers and 4 load
// clients per design) against a fake sysctl tree: ramp, hold with pings,
// both broadcasts, the naive ramp, teardown, the JSON and the report, and
// the tree restored exactly.
func TestSmokeMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs ~20 processes")
	}
	bin := buildBinaries(t)
	tree := fakeSysctlTree(t)
	before := treeFiles(t, tree)
	undo := filepath.Join(t.TempDir(), "undo.conf")
	work := t.TempDir()
	jsonPath, reportDir := filepath.Join(work, "m.json"), filepath.Join(work, "report")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "wsbench"), "million", "--conns", "3000", "--fd-cap", "1000",
		"--sysctl-root", tree, "--undo-file", undo, "--ping-interval", "2s", "--pong-timeout", "10s", "--hold", "12s",
		"--baseline-window", "1s", "--json", jsonPath, "--report", reportDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wsbench million: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
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
		if d == nil || d.Million == nil {
			t.Fatalf("%s: no million result", name)
		}
		m := d.Million
		if m.Reached != 3000 || m.FailedDials != 0 || m.ClosedByServer != 0 || m.StopReason != "" {
			t.Errorf("%s: reached %d, failed %d, closed %d, stop %q", name, m.Reached, m.FailedDials, m.ClosedByServer, m.StopReason)
		}
		if m.Layout.Servers != 4 || m.Layout.Clients != 4 || m.Layout.MaxPerServer > m.Layout.ServerCap {
			t.Errorf("%s: layout %+v", name, m.Layout)
		}
		// Not the kernel slab: it is host-wide, and the sockets of tests
		// running beside this one move it either way (-22 MB once).
		if m.Memory.Conns != 3000 || m.Memory.ServerRSSBytes <= m.Memory.ServerBaseRSSBytes {
			t.Errorf("%s: memory %+v", name, m.Memory)
		}
		if len(m.Timeline) < 2 || m.Timeline[len(m.Timeline)-1].Conns == 0 {
			t.Errorf("%s: timeline of %d samples", name, len(m.Timeline))
		}
	}
	w := r.Find(results.Wsgate).Million
	if w.Hold == nil || w.Hold.Pings == 0 || w.Hold.ClosedByServer != 0 || w.Hold.ServerCPUS <= 0 {
		t.Errorf("hold: %+v", w.Hold)
	}
	if len(w.Broadcasts) != 2 {
		t.Fatalf("broadcasts: %+v", w.Broadcasts)
	}
	for _, b := range w.Broadcasts {
		if b.Delivered != b.Expected || b.Expected != int64(3000*b.Messages) || b.ConnsComplete != 3000 || b.CompletionMs <= 0 {
			t.Errorf("broadcast %s: %d of %d delivered, %d complete, %v ms", b.Name, b.Delivered, b.Expected, b.ConnsComplete, b.CompletionMs)
		}
	}
	if r.Find(results.Naive).Million.Hold != nil {
		t.Error("the naive server was held: only its ramp is measured")
	}
	h := r.Host
	if h == nil || !h.Restored || h.SocketsLeft != h.TimeWaitLeft || h.ProcessesLeft != 0 || h.Doctor == nil || len(h.Sysctls) == 0 {
		t.Fatalf("host: %+v", h)
	}
	if after := treeFiles(t, tree); len(after) != len(before) {
		t.Errorf("tree has %d files after the run, %d before", len(after), len(before))
	} else {
		for p, v := range before {
			if after[p] != v {
				t.Errorf("%s = %q after the run, %q before", p, after[p], v)
			}
		}
	}
	if _, err := os.Stat(undo); !os.IsNotExist(err) {
		t.Errorf("undo file left: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join(reportDir, "README.md"))
	if err != nil || !strings.Contains(string(readme), report.MillionBeginMarker) || strings.Contains(string(readme), report.BeginMarker) {
		t.Fatalf("report: %v\n%s", err, readme)
	}
	for _, c := range []string{report.ChartMillionConns, report.ChartMillionMemory} {
		if _, err := os.Stat(filepath.Join(reportDir, "charts", c)); err != nil {
			t.Error(err)
		}
	}
	for _, want := range []string{"A million connections: ramp and memory", "Held idle, pinged", "Broadcast to every connection", "Host preparation"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
}
