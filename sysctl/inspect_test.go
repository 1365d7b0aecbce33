package sysctl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// itemNames lists every item Inspect reports, in order.
var itemNames = []string{
	"RLIMIT_NOFILE soft", "RLIMIT_NOFILE hard", "fs.nr_open", "fs.file-max",
	"fs.epoll.max_user_watches", "net.core.somaxconn", "net.core.netdev_max_backlog", "net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_mem", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
	"net.netfilter.nf_conntrack_max", ConstraintMemory,
}

func TestInspectGoodHost(t *testing.T) {
	r := goodHost().inspect(t)
	if !r.Ready() {
		t.Fatalf("good host not ready:\n%s", render(t, r))
	}
	if len(r.Items) != len(itemNames) {
		t.Fatalf("got %d items, want %d", len(r.Items), len(itemNames))
	}
	for i, it := range r.Items {
		if it.Name != itemNames[i] || !it.OK || it.Unknown() || it.Why == "" || it.Recommended == "" {
			t.Errorf("item %d = %+v, want %q ok with why and recommendation", i, it, itemNames[i])
		}
	}
	if r.Estimate < DefaultTarget {
		t.Errorf("estimate %d < %d", r.Estimate, DefaultTarget)
	}
	// 1048576 - 512: the gateway profile's nofile limit is the tightest one.
	if r.Estimate != 1048064 || r.Binding != ConstraintNoFile {
		t.Errorf("estimate %d limited by %q, want 1048064 by %q", r.Estimate, r.Binding, ConstraintNoFile)
	}
	if len(r.Constraints) != 7 {
		t.Errorf("got %d constraints, want 7: %+v", len(r.Constraints), r.Constraints)
	}
}

func TestInspect20000FileHost(t *testing.T) {
	r := goodHost().with(limitsRel, limitsFile("20000", "20000")).inspect(t)
	if r.Ready() {
		t.Fatal("host with 20000 open files reported ready")
	}
	if r.Binding != ConstraintNoFile || r.Estimate != 20000-FDReserve {
		t.Errorf("estimate %d limited by %q, want %d by %q", r.Estimate, r.Binding, 20000-FDReserve, ConstraintNoFile)
	}
	for _, name := range []string{"RLIMIT_NOFILE soft", "RLIMIT_NOFILE hard"} {
		if it := r.item(t, name); it.OK || it.Status() != "FIX" {
			t.Errorf("%s = %+v, want FIX", name, it)
		}
	}
	if !strings.Contains(r.Summary(), "limited by "+ConstraintNoFile) {
		t.Errorf("summary %q does not name the open-files limit", r.Summary())
	}
}

// TestInspectProcesses: the 20,000-file host is ready for a million
// connections shared by 53 processes, each needing only its share of open
// files; host-wide limits still count the whole target.
func TestInspectProcesses(t *testing.T) {
	h := goodHost().with(limitsRel, limitsFile("20000", "20000")).with(sysctlPath("fs.nr_open"), "20000\n")
	r := h.inspectWith(t, Options{Target: 1_000_000, Processes: 53})
	if !r.Ready() {
		t.Fatalf("not ready for 53 processes:\n%s", render(t, r))
	}
	perProcess := int64(1_000_000+52) / 53
	for _, name := range []string{"RLIMIT_NOFILE hard", "fs.nr_open"} {
		if it := r.item(t, name); !it.OK || it.Recommended != fmt.Sprintf(">= %d", perProcess+FDReserve) {
			t.Errorf("%s = %+v, want ok for %d per process", name, it, perProcess)
		}
	}
	if c, _ := r.constraint(ConstraintNoFile); c.Connections != (20000-FDReserve)*53 || !strings.Contains(c.Basis, "x 53 processes") {
		t.Errorf("open-files constraint %+v", c)
	}
	if it := r.item(t, "fs.file-max"); it.Recommended != fmt.Sprintf(">= %d", 1_000_000+HostFDReserve) {
		t.Errorf("fs.file-max recommended %q: a host-wide limit must count the whole target", it.Recommended)
	}
	out := render(t, r)
	for _, want := range []string{"host check for 1000000 connections in 53 processes (up to 18868 each)", "READY for 1000000 connections in 53 processes"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Too few processes for the limit: not ready, and the limit binds.
	r = h.inspectWith(t, Options{Target: 1_000_000, Processes: 40})
	if r.Ready() || r.Binding != ConstraintNoFile || r.Estimate != (20000-FDReserve)*40 {
		t.Errorf("40 processes: ready %v, estimate %d by %q", r.Ready(), r.Estimate, r.Binding)
	}
}

// wsgate raises soft to hard at start, so only the hard limit binds.
func TestInspectSoftBelowHard(t *testing.T) {
	r := goodHost().with(limitsRel, limitsFile("1024", "1048576")).inspect(t)
	if !r.Ready() {
		t.Fatalf("host with soft 1024, hard 1048576 not ready:\n%s", render(t, r))
	}
	if it := r.item(t, "RLIMIT_NOFILE soft"); !it.OK {
		t.Errorf("soft item = %+v, want ok", it)
	}
	c, _ := r.constraint(ConstraintNoFile)
	if c.Connections != 1048576-FDReserve || !strings.Contains(c.Basis, "raised") {
		t.Errorf("nofile constraint = %+v", c)
	}

	// A low hard limit still binds even when soft equals it.
	r = goodHost().with(limitsRel, limitsFile("1024", "20000")).inspect(t)
	if r.Ready() || r.Binding != ConstraintNoFile || r.Estimate != 20000-FDReserve {
		t.Errorf("soft 1024, hard 20000: ready=%v estimate %d by %q", r.Ready(), r.Estimate, r.Binding)
	}
}

// Each constraint, made the tightest, is the one named.
func TestInspectBindingConstraint(t *testing.T) {
	cases := []struct {
		rel, content string
		binding      string
		estimate     int64
	}{
		{sysctlPath("fs.nr_open"), "600000\n", "fs.nr_open", 600000 - FDReserve},
		{sysctlPath("fs.file-max"), "500000\n", "fs.file-max", 500000 - HostFDReserve},
		{sysctlPath("fs.epoll.max_user_watches"), "700000\n", "fs.epoll.max_user_watches", 700000 - FDReserve},
		{sysctlPath("net.ipv4.tcp_mem"), "100000 200000 576918\n", "net.ipv4.tcp_mem", 576918},
		{sysctlPath("net.netfilter.nf_conntrack_max"), "262144\n", "net.netfilter.nf_conntrack_max", 262144},
		{meminfoRel, meminfoFile(2<<30, 1<<30), ConstraintMemory, (2 << 30) / ConnBytes},
		// Unlimited open files never bind; ties go to the earlier constraint.
		{limitsRel, limitsFile("unlimited", "unlimited"), "fs.nr_open", 2097152 - FDReserve},
	}
	for _, tc := range cases {
		t.Run(tc.binding, func(t *testing.T) {
			r := goodHost().with(tc.rel, tc.content).inspect(t)
			if r.Binding != tc.binding || r.Estimate != tc.estimate {
				t.Errorf("estimate %d limited by %q, want %d by %q", r.Estimate, r.Binding, tc.estimate, tc.binding)
			}
			if r.Ready() != (tc.estimate >= DefaultTarget) {
				t.Errorf("ready = %v with estimate %d", r.Ready(), r.Estimate)
			}
		})
	}
}

// Settings that do not cap capacity still block readiness.
func TestInspectNonCapacityItems(t *testing.T) {
	cases := []struct{ rel, content, item string }{
		{sysctlPath("net.core.somaxconn"), "4096\n", "net.core.somaxconn"},
		{sysctlPath("net.core.netdev_max_backlog"), "1000\n", "net.core.netdev_max_backlog"},
		{sysctlPath("net.ipv4.ip_local_port_range"), "32768 60999\n", "net.ipv4.ip_local_port_range"},
		{sysctlPath("net.ipv4.ip_local_port_range"), "60000 1024\n", "net.ipv4.ip_local_port_range"},
		{sysctlPath("net.ipv4.tcp_rmem"), "4096 131072 6291456\n", "net.ipv4.tcp_rmem"},
		{sysctlPath("net.ipv4.tcp_wmem"), "8192 16384 4194304\n", "net.ipv4.tcp_wmem"},
	}
	for _, tc := range cases {
		r := goodHost().with(tc.rel, tc.content).inspect(t)
		if it := r.item(t, tc.item); it.OK || it.Unknown() {
			t.Errorf("%s = %q: item %+v, want FIX", tc.item, tc.content, it)
		}
		if r.Ready() {
			t.Errorf("%s = %q: host reported ready", tc.item, tc.content)
		}
		if r.Estimate != 1048064 {
			t.Errorf("%s = %q changed the estimate to %d", tc.item, tc.content, r.Estimate)
		}
	}
}

func TestInspectConntrackNotLoaded(t *testing.T) {
	r := goodHost().without(sysctlPath("net.netfilter.nf_conntrack_max")).inspect(t)
	if !r.Ready() {
		t.Fatalf("host without conntrack not ready:\n%s", render(t, r))
	}
	it := r.item(t, "net.netfilter.nf_conntrack_max")
	if !it.OK || it.Unknown() || it.Current != "conntrack not loaded" {
		t.Errorf("conntrack item = %+v, want ok, \"conntrack not loaded\"", it)
	}
	if _, ok := r.constraint("net.netfilter.nf_conntrack_max"); ok {
		t.Error("absent conntrack table still counted as a constraint")
	}
}

func TestInspectTargetAndPageSize(t *testing.T) {
	h := goodHost().with(limitsRel, limitsFile("20000", "20000"))
	r := h.inspectWith(t, Options{Target: 10000, PageSize: 4096})
	if !r.Ready() || r.Target != 10000 {
		t.Errorf("20000-file host not ready for 10000 connections:\n%s", render(t, r))
	}
	if got := r.item(t, "RLIMIT_NOFILE hard").Recommended; got != ">= 10512" {
		t.Errorf("recommendation for 10000 connections = %q, want >= 10512", got)
	}

	// With 64 KiB pages the same tcp_mem page count is 16x the bytes, but
	// each socket also holds a whole 64 KiB page: one page per connection.
	r = goodHost().with(sysctlPath("net.ipv4.tcp_mem"), "1 2 900000\n").inspectWith(t, Options{PageSize: 65536})
	if r.Binding != "net.ipv4.tcp_mem" || r.Estimate != 900000 {
		t.Errorf("64 KiB pages: estimate %d limited by %q, want 900000 by tcp_mem", r.Estimate, r.Binding)
	}
}

// Missing or malformed files make their items unknown, never panic, and
// never make the host ready.
func TestInspectMalformed(t *testing.T) {
	affected := map[string][]string{
		limitsRel:  {"RLIMIT_NOFILE soft", "RLIMIT_NOFILE hard"},
		meminfoRel: {ConstraintMemory},
	}
	for rel := range goodHost() {
		if _, ok := affected[rel]; !ok {
			name := strings.ReplaceAll(strings.TrimPrefix(rel, "proc/sys/"), "/", ".")
			affected[rel] = []string{name}
		}
	}
	garbage := []string{"", "abc\n", "1 2 3 4 5\n", "-5\n", "\x00\xff\n", "Max open files\nMemTotal: x kB\n"}
	for rel, names := range affected {
		for _, content := range garbage {
			checkUnknown(t, goodHost().with(rel, content), names, ErrMalformed)
		}
		// A directory where a file should be: read fails, item unknown.
		checkUnknown(t, goodHost().without(rel).with(rel+"/x", "1\n"), names, nil)
		if rel == sysctlPath("net.netfilter.nf_conntrack_max") {
			continue // absent means "not loaded", tested above
		}
		checkUnknown(t, goodHost().without(rel), names, fs.ErrNotExist)
	}
}

// checkUnknown inspects h and checks that exactly the items names are
// unknown, with an error matching want (if want is not nil).
func checkUnknown(t *testing.T, h fakeHost, names []string, want error) {
	t.Helper()
	r := h.inspect(t)
	if r.Ready() {
		t.Errorf("host with unknown %v reported ready", names)
	}
	for _, it := range r.Items {
		expect := contains(names, it.Name)
		if it.Unknown() != expect {
			t.Errorf("%v broken: item %s unknown=%v (err %v)", names, it.Name, it.Unknown(), it.Err)
			continue
		}
		if !expect {
			continue
		}
		if it.OK || it.Status() != "UNKNOWN" || it.Current != "unknown" {
			t.Errorf("unknown item %+v should be UNKNOWN and not ok", it)
		}
		if want != nil && !errors.Is(it.Err, want) {
			t.Errorf("item %s error %v, want %v", it.Name, it.Err, want)
		}
		if !strings.Contains(it.Err.Error(), string(filepath.Separator)+"proc") {
			t.Errorf("item %s error %q does not name the file", it.Name, it.Err)
		}
	}
	if err := r.Write(io.Discard); err != nil {
		t.Errorf("Write: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestInspectNotAHostTree(t *testing.T) {
	_, err := Inspect(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, ErrNoProc) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: error %v, want ErrNoProc and fs.ErrNotExist", err)
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "proc"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(root); !errors.Is(err, ErrNoProc) {
		t.Errorf("proc is a file: error %v, want ErrNoProc", err)
	}
	// An empty proc directory is a host tree where nothing can be read.
	r := fakeHost{}.inspect(t)
	if r.Ready() || r.Binding != "" || r.Estimate != 0 {
		t.Errorf("empty tree: ready=%v estimate %d by %q", r.Ready(), r.Estimate, r.Binding)
	}
	if !strings.Contains(r.Summary(), "unknown") {
		t.Errorf("empty tree summary %q", r.Summary())
	}
}

// render returns the printed report, for failure messages.
func render(t *testing.T, r Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b.String()
}
