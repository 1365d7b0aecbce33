package sysctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseConf(t *testing.T) {
	conf := "# comment\n; another\n\nfs.file-max = 4194304\n" +
		"net.ipv4.ip_local_port_range =  1024\t65535 \n" +
		"-net.netfilter.nf_conntrack_max = 2097152\n" +
		"net/core/somaxconn=65535\n" +
		"net.ipv4.ip_local_reserved_ports =\n"
	got, err := ParseConf([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	want := []Setting{
		{Key: "fs.file-max", Value: "4194304"},
		{Key: "net.ipv4.ip_local_port_range", Value: "1024 65535"},
		{Key: "net.netfilter.nf_conntrack_max", Value: "2097152", Optional: true},
		{Key: "net.core.somaxconn", Value: "65535"},
		{Key: "net.ipv4.ip_local_reserved_ports", Value: ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseConf:\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"no equals sign\n", " = 3\n", "a b = 3\n", "a..b = 1\n"} {
		if _, err := ParseConf([]byte(bad)); err == nil {
			t.Errorf("ParseConf(%q) accepted it", bad)
		}
	}
	// Both embedded sysctl profiles parse, and every key is a known sysctl
	// name (dotted, no spaces).
	for _, name := range []string{"gateway/99-wsgate.conf", "loadgen/99-wsgate-loadgen.conf"} {
		b, err := Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseConf(b)
		if err != nil || len(s) < 10 {
			t.Errorf("%s: %d settings, %v", name, len(s), err)
		}
	}
}

// sysTree is a fake /proc/sys: file contents by sysctl name.
type sysTree map[string]string

func (st sysTree) build(t *testing.T) string {
	t.Helper()
	h := fakeHost{}
	for k, v := range st {
		h[sysctlPath(k)] = v
	}
	return h.build(t)
}

func readAll(t *testing.T, root string, keys []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(sysctlPath(k))))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(b)
	}
	return out
}

// A host like this one before a run: low limits, a narrow port range, one
// limit already higher than the profile's, conntrack not loaded.
func hostBefore() sysTree {
	return sysTree{
		"fs.file-max":                      "2466248\n",
		"fs.nr_open":                       "4194304\n", // higher than the profile's 2097152
		"net.core.somaxconn":               "4096\n",
		"net.ipv4.ip_local_port_range":     "32768\t60999\n",
		"net.ipv4.tcp_mem":                 "287907\t383879\t575814\n",
		"net.ipv4.tcp_rmem":                "4096\t131072\t33554432\n",
		"net.ipv4.ip_local_reserved_ports": "\n",
		"net.ipv4.tcp_tw_reuse":            "2\n",
	}
}

const profileConf = `fs.file-max = 4194304
fs.nr_open = 2097152
net.core.somaxconn = 65535
net.ipv4.ip_local_port_range = 1024 65535
net.ipv4.tcp_mem = 1048576 1572864 2097152
net.ipv4.tcp_rmem = 4096 16384 4194304
net.ipv4.ip_local_reserved_ports = 8080
net.ipv4.tcp_tw_reuse = 1
-net.netfilter.nf_conntrack_max = 2097152
`

func TestApplyAndRestore(t *testing.T) {
	before := hostBefore()
	root := before.build(t)
	keys := make([]string, 0, len(before))
	for k := range before {
		keys = append(keys, k)
	}
	orig := readAll(t, root, keys)
	settings, err := ParseConf([]byte(profileConf))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Apply(root, settings)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"fs.file-max":                      "4194304\n",
		"fs.nr_open":                       "4194304\n", // not lowered
		"net.core.somaxconn":               "65535\n",
		"net.ipv4.ip_local_port_range":     "1024 65535\n",
		"net.ipv4.tcp_mem":                 "1048576 1572864 2097152\n",
		"net.ipv4.tcp_rmem":                "4096 16384 4194304\n", // set: the profile wants the smaller default
		"net.ipv4.ip_local_reserved_ports": "8080\n",
		"net.ipv4.tcp_tw_reuse":            "1\n",
	}
	for k, v := range readAll(t, root, keys) {
		if v != want[k] {
			t.Errorf("after Apply %s = %q, want %q", k, v, want[k])
		}
	}
	if len(a.Changes) != 7 {
		t.Errorf("changes %+v, want 7", a.Changes)
	}
	skipped := map[string]string{}
	for _, s := range a.Skipped {
		skipped[s.Key] = s.Reason
	}
	if !strings.Contains(skipped["fs.nr_open"], "not lowered") || !strings.Contains(skipped["net.netfilter.nf_conntrack_max"], "not present") {
		t.Errorf("skipped %v", skipped)
	}

	// The undo file restores the host as well as Restore does.
	undo := a.UndoConf()
	if err := a.Restore(); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, root, keys)
	for k, v := range orig {
		if strings.Join(strings.Fields(after[k]), " ") != strings.Join(strings.Fields(v), " ") {
			t.Errorf("after Restore %s = %q, want %q", k, after[k], v)
		}
	}
	if len(a.Changes) != 0 {
		t.Errorf("Restore left %+v", a.Changes)
	}
	if _, err := Apply(root, settings); err != nil {
		t.Fatal(err)
	}
	changes, err := RestoreConf(root, undo)
	if err != nil || len(changes) != 7 {
		t.Fatalf("RestoreConf: %d changes, %v", len(changes), err)
	}
	for k, v := range readAll(t, root, keys) {
		if strings.Join(strings.Fields(v), " ") != strings.Join(strings.Fields(orig[k]), " ") {
			t.Errorf("after RestoreConf %s = %q, want %q", k, v, orig[k])
		}
	}
}

// A failure halfway (a required key missing, a value that cannot be
// written) leaves the host as it was.
func TestApplyFailureRollsBack(t *testing.T) {
	for name, tc := range map[string]struct {
		conf   string
		damage func(t *testing.T, root string)
		want   error
	}{
		"missing required key": {conf: "fs.file-max = 4194304\nnet.core.nope = 1\n", want: fs.ErrNotExist},
		"write fails": {conf: "fs.file-max = 4194304\nnet.core.somaxconn = 65535\n", damage: func(t *testing.T, root string) {
			// A directory in place of the file: it cannot be read or written.
			p := filepath.Join(root, filepath.FromSlash(sysctlPath("net.core.somaxconn")))
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		"malformed current value": {conf: "fs.file-max = 4194304\nnet.ipv4.tcp_mem = 1 2 3\n", damage: func(t *testing.T, root string) {
			if err := WriteSysctl(root, "net.ipv4.tcp_mem", "1 2"); err != nil {
				t.Fatal(err)
			}
		}, want: ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			root := hostBefore().build(t)
			if tc.damage != nil {
				tc.damage(t, root)
			}
			settings, err := ParseConf([]byte(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Apply(root, settings)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Apply error %v, want %v", err, tc.want)
			}
			if v, _ := ReadSysctl(root, "fs.file-max"); v != "2466248" {
				t.Errorf("fs.file-max = %q after a failed Apply, want it restored", v)
			}
		})
	}
}
