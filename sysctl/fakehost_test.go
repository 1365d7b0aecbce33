package sysctl

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// fakeHost is a host tree: file contents by path relative to the root.
type fakeHost map[string]string

// Paths of the files Inspect reads.
const (
	limitsRel  = "proc/self/limits"
	meminfoRel = "proc/meminfo"
)

// limitsFile renders a /proc/<pid>/limits file with the given open-files
// limits, plus a neighbouring line the parser must skip.
func limitsFile(soft, hard string) string {
	return fmt.Sprintf("Limit                     Soft Limit           Hard Limit           Units     \n"+
		"Max processes             96551                96551                processes \n"+
		"Max open files            %-20s %-20s files     \n"+
		"Max locked memory         8388608              8388608              bytes     \n", soft, hard)
}

// meminfoFile renders /proc/meminfo with MemTotal and MemAvailable in bytes.
func meminfoFile(total, available int64) string {
	return fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n",
		total>>10, available>>10, available>>10)
}

// goodHost is a host that installed the gateway profile and has 64 GiB.
func goodHost() fakeHost {
	return fakeHost{
		limitsRel:                                    limitsFile("1048576", "1048576"),
		meminfoRel:                                   meminfoFile(64<<30, 60<<30),
		sysctlPath("fs.nr_open"):                     "2097152\n",
		sysctlPath("fs.file-max"):                    "4194304\n",
		sysctlPath("fs.epoll.max_user_watches"):      "2097152\n",
		sysctlPath("net.core.somaxconn"):             "65535\n",
		sysctlPath("net.core.netdev_max_backlog"):    "65536\n",
		sysctlPath("net.ipv4.ip_local_port_range"):   "1024\t65535\n",
		sysctlPath("net.ipv4.tcp_mem"):               "1048576\t1572864\t2097152\n",
		sysctlPath("net.ipv4.tcp_rmem"):              "4096\t16384\t4194304\n",
		sysctlPath("net.ipv4.tcp_wmem"):              "4096\t16384\t4194304\n",
		sysctlPath("net.netfilter.nf_conntrack_max"): "2097152\n",
	}
}

// with returns a copy of h with rel set to content.
func (h fakeHost) with(rel, content string) fakeHost {
	c := maps.Clone(h)
	c[rel] = content
	return c
}

// without returns a copy of h without rel.
func (h fakeHost) without(rel string) fakeHost {
	c := maps.Clone(h)
	delete(c, rel)
	return c
}

// build writes h into a fresh temporary directory and returns its path.
func (h fakeHost) build(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	// The proc directory must exist even when a test removes every file.
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, content := range h {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// inspect builds h and inspects it with 4 KiB pages and the default target.
func (h fakeHost) inspect(t *testing.T) Report {
	t.Helper()
	return h.inspectWith(t, Options{PageSize: 4096})
}

// inspectWith builds h and inspects it with opts.
func (h fakeHost) inspectWith(t *testing.T, opts Options) Report {
	t.Helper()
	r, err := InspectWith(h.build(t), opts)
	if err != nil {
		t.Fatalf("InspectWith: %v", err)
	}
	return r
}

// item returns the report's item called name.
func (r Report) item(t *testing.T, name string) Item {
	t.Helper()
	for _, it := range r.Items {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no item %q in report", name)
	return Item{}
}

// constraint returns the report's constraint called name, if any.
func (r Report) constraint(name string) (Constraint, bool) {
	for _, c := range r.Constraints {
		if c.Name == name {
			return c, true
		}
	}
	return Constraint{}, false
}
