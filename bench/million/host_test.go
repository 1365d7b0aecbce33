package million

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/sysctl"
)

// doctorBefore is `wsgate doctor` on this host as found (stock sysctls).
const doctorBefore = `host check for 1000000 connections (root /, page size 4096)

ITEM                            CURRENT                             RECOMMENDED                     STATUS  WHY
RLIMIT_NOFILE soft              20000                               = hard, >= 1000512              FIX     open files before wsgate raises it to the hard limit; other tools keep it
RLIMIT_NOFILE hard              20000                               >= 1000512                      FIX     open files per process, one per connection; set by LimitNOFILE= or limits.d
fs.nr_open                      1048576                             >= 1000512                      ok      per-process ceiling for RLIMIT_NOFILE: the hard limit cannot be raised above it
net.core.somaxconn              4096                                >= 65535                        FIX     accept queue per listener (Go's listen backlog); short queues drop SYNs in reconnect storms
net.ipv4.tcp_mem                287907 383879 575814 (max 2.2 GiB)  max >= 1000000 pages (3.8 GiB)  FIX     kernel-wide TCP buffer pages; a burst to every socket needs ~1 page each, past max sends stall
net.netfilter.nf_conntrack_max  262144                              >= 1000000                      FIX     a stateful firewall tracks every connection; when the table is full new SYNs are dropped
memory                          total 23.5 GiB, available 21.7 GiB  total >= 4.9 GiB                ok      ~1 KiB in wsgate + ~4.1 KiB of kernel socket memory per idle connection

CONSTRAINT                      CONNECTIONS  BASIS
open-files hard limit           19488        hard 20000 - 512 reserved fds  <- binding
fs.nr_open                      1048064      1048576 - 512 reserved
net.ipv4.tcp_mem                575814       max 575814 pages x 4096 B / 4096 B per socket
net.netfilter.nf_conntrack_max  262144       one table entry per connection
memory                          4840321      MemTotal 23.5 GiB / 5222 B per connection

this host can hold about 19488 connections (limited by open-files hard limit)
NOT READY: estimate 19488 < target 1000000; fix: RLIMIT_NOFILE soft, RLIMIT_NOFILE hard, net.core.somaxconn, net.ipv4.tcp_mem, net.netfilter.nf_conntrack_max
`

// doctorAfter is the same host with the profiles applied, asked for the
// run's 53 server processes: each needs only its share of open files.
const doctorAfter = `host check for 1000000 connections in 53 processes (up to 18868 each) (root /, page size 4096)

ITEM                            CURRENT                                 RECOMMENDED                     STATUS  WHY
RLIMIT_NOFILE soft              20000                                   = hard, >= 19380                ok      open files before wsgate raises it to the hard limit; other tools keep it
RLIMIT_NOFILE hard              20000                                   >= 19380                        ok      open files per process, one per connection; set by LimitNOFILE= or limits.d
net.core.somaxconn              65535                                   >= 65535                        ok      accept queue per listener (Go's listen backlog); short queues drop SYNs in reconnect storms
net.ipv4.tcp_mem                1048576 1572864 2097152 (max 8.0 GiB)   max >= 1000000 pages (3.8 GiB)  ok      kernel-wide TCP buffer pages; a burst to every socket needs ~1 page each, past max sends stall
memory                          total 23.5 GiB, available 21.7 GiB      total >= 4.9 GiB                ok      ~1 KiB in wsgate + ~4.1 KiB of kernel socket memory per idle connection

CONSTRAINT                      CONNECTIONS  BASIS
open-files hard limit           1032864      (hard 20000 - 512 reserved fds) x 53 processes  <- binding
net.ipv4.tcp_mem                2097152      max 2097152 pages x 4096 B / 4096 B per socket
memory                          4840321      MemTotal 23.5 GiB / 5222 B per connection

this host can hold about 1032864 connections (limited by open-files hard limit)
READY for 1000000 connections in 53 processes (up to 18868 each)
`

// doctorOneProcess is the prepared host asked for one process: the
// per-process open-file limit fails, and nothing waives it any more.
const doctorOneProcess = `host check for 1000000 connections (root /, page size 4096)

ITEM                            CURRENT                                 RECOMMENDED                     STATUS  WHY
RLIMIT_NOFILE hard              20000                                   >= 1000512                      FIX     open files per process, one per connection; set by LimitNOFILE= or limits.d

CONSTRAINT                      CONNECTIONS  BASIS
open-files hard limit           19488        hard 20000 - 512 reserved fds  <- binding

this host can hold about 19488 connections (limited by open-files hard limit)
NOT READY: estimate 19488 < target 1000000; fix: RLIMIT_NOFILE hard
`

func TestJudgeDoctor(t *testing.T) {
	d := results.Doctor{Output: doctorAfter}
	ok, err := JudgeDoctor(&d, 1_000_000)
	if !ok || err != nil {
		t.Fatalf("after the profiles: ok %v, %v", ok, err)
	}
	if len(d.Failing) != 0 || !strings.HasPrefix(d.Verdict, "READY for 1000000 connections in 53 processes") || !strings.Contains(d.Summary, "1032864") {
		t.Errorf("parsed %+v", d)
	}

	d = results.Doctor{Output: doctorOneProcess}
	if ok, err := JudgeDoctor(&d, 1_000_000); ok || err == nil ||
		!strings.Contains(err.Error(), "RLIMIT_NOFILE hard") || !strings.Contains(err.Error(), "open-files hard limit allows 19488") {
		t.Errorf("one process: ok %v, %v; want the open-file limit named", ok, err)
	}

	d = results.Doctor{Output: doctorBefore}
	ok, err = JudgeDoctor(&d, 1_000_000)
	if ok || err == nil {
		t.Fatal("a host with stock sysctls was judged ready")
	}
	for _, want := range []string{"net.core.somaxconn", "net.ipv4.tcp_mem allows 575814", "nf_conntrack_max allows 262144"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The same host is fine for a run small enough for its limits… except
	// for the items marked FIX whatever the target.
	d = results.Doctor{Output: doctorBefore}
	if _, err := JudgeDoctor(&d, 100_000); err == nil || strings.Contains(err.Error(), "tcp_mem allows") {
		t.Errorf("100k: %v; want only the FIX items named", err)
	}
	// A verdict of NOT READY is never overruled, even with nothing parsed
	// to blame.
	d = results.Doctor{Output: "NOT READY: something new\n"}
	if ok, err := JudgeDoctor(&d, 10); ok || err == nil || !strings.Contains(err.Error(), "something new") {
		t.Errorf("bare NOT READY: %v, %v", ok, err)
	}

	for _, bad := range []string{"", "ITEM  CURRENT\nno verdict here\n", "CONSTRAINT  CONNECTIONS  BASIS\nmemory  many  x\n\nREADY for 1 connections\n"} {
		d := results.Doctor{Output: bad}
		if ok, err := JudgeDoctor(&d, 10); ok || err == nil {
			t.Errorf("JudgeDoctor(%q) = %v, %v", bad, ok, err)
		}
	}
}

// hostTree is a fake host with every key of the profiles, stock values.
func hostTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, name := range Profiles {
		b, err := sysctl.Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		settings, err := sysctl.ParseConf(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range settings {
			if s.Optional {
				continue // conntrack not loaded
			}
			p := filepath.Join(root, "proc", "sys", filepath.FromSlash(strings.ReplaceAll(s.Key, ".", "/")))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			// A stock-looking value with the profile's number of fields.
			v := strings.Repeat("7 ", len(strings.Fields(s.Value)))
			if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(filepath.Join(root, "proc", "sys"), func(p string, d os.DirEntry, err error) error {
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

// prepareHost changes the host, keeps the old values on disk until it is
// restored, and restore puts everything back.
func TestPrepareAndRestoreHost(t *testing.T) {
	root := hostTree(t)
	undo := filepath.Join(t.TempDir(), "undo.conf")
	orig := snapshot(t, root)
	h, err := prepareHost(root, undo)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := sysctl.ReadSysctl(root, "net.core.somaxconn"); got != "65535" {
		t.Errorf("somaxconn %q after prepare", got)
	}
	if len(h.applied.Changes) < 15 {
		t.Errorf("only %d changes", len(h.applied.Changes))
	}
	if _, err := os.Stat(undo); err != nil {
		t.Fatalf("no undo file while prepared: %v", err)
	}
	if err := h.restore(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, root); !maps.Equal(after, orig) {
		t.Errorf("host not restored:\n got %v\nwant %v", after, orig)
	}
	if _, err := os.Stat(undo); !os.IsNotExist(err) {
		t.Errorf("undo file left after restore: %v", err)
	}
}

// A run killed after prepareHost left its undo file; the next run restores
// from it before it starts.
func TestRestoreLeftover(t *testing.T) {
	root := hostTree(t)
	undo := filepath.Join(t.TempDir(), "undo.conf")
	orig := snapshot(t, root)
	if _, err := prepareHost(root, undo); err != nil { // and never restored
		t.Fatal(err)
	}
	changes, err := RestoreLeftover(root, undo)
	if err != nil || len(changes) < 15 {
		t.Fatalf("RestoreLeftover: %d changes, %v", len(changes), err)
	}
	if after := snapshot(t, root); !maps.Equal(after, orig) {
		t.Errorf("host not restored from the undo file")
	}
	if _, err := os.Stat(undo); !os.IsNotExist(err) {
		t.Errorf("undo file left: %v", err)
	}
	if changes, err := RestoreLeftover(root, undo); err != nil || changes != nil {
		t.Errorf("without an undo file: %v, %v", changes, err)
	}
}
