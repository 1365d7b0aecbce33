package sysctl

import (
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The gateway's keepalive timing: a proxy must let a connection sit idle
// longer than one ping interval plus the pong timeout.
const (
	pingInterval = 25 * time.Second
	pongTimeout  = 10 * time.Second
	drainWindow  = 10 * time.Second
)

var wantProfiles = []string{
	"container/Dockerfile",
	"container/Dockerfile.dockerignore",
	"container/compose.yaml",
	"gateway/99-wsgate-limits.conf",
	"gateway/99-wsgate.conf",
	"gateway/wsgate.service",
	"haproxy/wsgate.cfg",
	"kubernetes/wsgate.yaml",
	"loadgen/99-wsgate-loadgen-limits.conf",
	"loadgen/99-wsgate-loadgen.conf",
	"nginx/wsgate.conf",
}

func TestProfileNames(t *testing.T) {
	if got := ProfileNames(); !slices.Equal(got, wantProfiles) {
		t.Errorf("ProfileNames() = %q, want %q", got, wantProfiles)
	}
	for _, name := range wantProfiles {
		b, err := Profile(name)
		if err != nil || len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("Profile(%q): %d bytes, err %v; want non-empty, newline-terminated", name, len(b), err)
		}
	}
}

func TestProfileErrors(t *testing.T) {
	cases := []struct {
		name string
		want error
	}{
		{"nope.conf", fs.ErrNotExist},
		{"gateway/nope.conf", fs.ErrNotExist},
		{"../doc.go", fs.ErrInvalid},
		{"/gateway/99-wsgate.conf", fs.ErrInvalid},
		{"", fs.ErrInvalid},
		{".", fs.ErrInvalid},
	}
	for _, tc := range cases {
		if _, err := Profile(tc.name); !errors.Is(err, tc.want) {
			t.Errorf("Profile(%q) error = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Profile("gateway"); err == nil {
		t.Error("Profile(directory) succeeded")
	}
}

// profileLines returns the lines of an embedded profile.
func profileLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := Profile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// settings parses the non-comment lines of a profile, checking that each is
// preceded by a comment line giving its reason, and returns them.
func settings(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	lines := profileLines(t, name)
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("%s:%d: %q has no reason comment on the line above", name, i+1, l)
		}
		out = append(out, l)
	}
	return out
}

var sysctlKey = regexp.MustCompile(`^-?[a-z0-9_]+(\.[a-z0-9_-]+)+$`)

// sysctlProfile parses a sysctl.d profile into key -> value (a leading "-",
// "failure is fine", is dropped from the key).
func sysctlProfile(t *testing.T, name string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for _, l := range settings(t, name) {
		k, v, ok := strings.Cut(l, "=")
		k, v = strings.TrimSpace(k), strings.Join(strings.Fields(v), " ")
		if !ok || !sysctlKey.MatchString(k) || v == "" {
			t.Errorf("%s: bad assignment %q", name, l)
			continue
		}
		kv[strings.TrimPrefix(k, "-")] = v
	}
	return kv
}

// nofileLimits parses a limits.d profile and returns the soft and hard
// nofile values for the "*" domain.
func nofileLimits(t *testing.T, name string) (soft, hard string) {
	t.Helper()
	for _, l := range settings(t, name) {
		f := strings.Fields(l)
		if len(f) != 4 || f[2] != "nofile" || (f[1] != "soft" && f[1] != "hard") {
			t.Errorf("%s: bad limits line %q", name, l)
			continue
		}
		if f[0] != "*" {
			continue
		}
		if f[1] == "soft" {
			soft = f[3]
		} else {
			hard = f[3]
		}
	}
	return soft, hard
}

// hostFromProfiles builds a fake host with a profile's sysctls and limits.
func hostFromProfiles(t *testing.T, sysctlName, limitsName string, mem int64) fakeHost {
	t.Helper()
	h := fakeHost{meminfoRel: meminfoFile(mem, mem)}
	for k, v := range sysctlProfile(t, sysctlName) {
		h[sysctlPath(k)] = v + "\n"
	}
	soft, hard := nofileLimits(t, limitsName)
	h[limitsRel] = limitsFile(soft, hard)
	return h
}

// A host with the gateway profile installed and enough memory passes the
// doctor: the profiles and the checks agree.
func TestGatewayProfileIsReady(t *testing.T) {
	h := hostFromProfiles(t, "gateway/99-wsgate.conf", "gateway/99-wsgate-limits.conf", 16<<30)
	r := h.inspect(t)
	if !r.Ready() {
		t.Fatalf("host with the gateway profile is not ready:\n%s", render(t, r))
	}
	for _, it := range r.Items {
		if it.Unknown() {
			t.Errorf("gateway profile does not set %s", it.Name)
		}
	}
}

// The load-generator profile satisfies the checks that matter to a client.
func TestLoadgenProfile(t *testing.T) {
	h := hostFromProfiles(t, "loadgen/99-wsgate-loadgen.conf", "loadgen/99-wsgate-loadgen-limits.conf", 16<<30)
	r := h.inspect(t)
	for _, name := range []string{
		"RLIMIT_NOFILE soft", "RLIMIT_NOFILE hard", "fs.nr_open", "fs.file-max",
		"fs.epoll.max_user_watches", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_mem",
		"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.netfilter.nf_conntrack_max",
	} {
		if it := r.item(t, name); !it.OK {
			t.Errorf("loadgen profile: %s = %+v, want ok", name, it)
		}
	}
	if kv := sysctlProfile(t, "loadgen/99-wsgate-loadgen.conf"); kv["net.ipv4.tcp_tw_reuse"] != "1" {
		t.Errorf("loadgen profile: tcp_tw_reuse = %q, want 1", kv["net.ipv4.tcp_tw_reuse"])
	}
}

// Limits above fs.nr_open make pam_limits (and systemd) fail to apply them.
func TestLimitsBelowNrOpen(t *testing.T) {
	pairs := [][2]string{
		{"gateway/99-wsgate.conf", "gateway/99-wsgate-limits.conf"},
		{"loadgen/99-wsgate-loadgen.conf", "loadgen/99-wsgate-loadgen-limits.conf"},
	}
	for _, p := range pairs {
		nrOpen := atoi(t, sysctlProfile(t, p[0])["fs.nr_open"])
		for _, l := range settings(t, p[1]) {
			if v := atoi(t, strings.Fields(l)[3]); v > nrOpen {
				t.Errorf("%s: %q exceeds fs.nr_open %d", p[1], l, nrOpen)
			}
		}
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return v
}

// unitDirectives parses a systemd unit into directive -> value.
func unitDirectives(t *testing.T, name string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for _, l := range profileLines(t, name) {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			kv[k] = v
		}
	}
	return kv
}

func TestServiceUnit(t *testing.T) {
	u := unitDirectives(t, "gateway/wsgate.service")
	if got := u["ExecStart"]; got != "/usr/local/bin/wsgate serve --listen 0.0.0.0:8080 --debug-listen 0.0.0.0:9090 --broker redis --redis-url redis://10.0.0.30:6379/0" {
		t.Errorf("ExecStart = %q", got)
	}
	if u["KillSignal"] != "SIGTERM" || u["Restart"] == "" || u["Restart"] == "no" {
		t.Errorf("KillSignal = %q, Restart = %q", u["KillSignal"], u["Restart"])
	}
	stop, err := time.ParseDuration(u["TimeoutStopSec"])
	if err != nil || stop <= drainWindow {
		t.Errorf("TimeoutStopSec = %q (%v), want > %v drain window", u["TimeoutStopSec"], err, drainWindow)
	}
	nofile := atoi(t, u["LimitNOFILE"])
	nrOpen := atoi(t, sysctlProfile(t, "gateway/99-wsgate.conf")["fs.nr_open"])
	if nofile < DefaultTarget+FDReserve || nofile > nrOpen {
		t.Errorf("LimitNOFILE = %d, want in [%d, fs.nr_open %d]", nofile, DefaultTarget+FDReserve, nrOpen)
	}
}

// proxyTimeout finds "<directive> <n>s" in a proxy config and returns it.
func proxyTimeout(t *testing.T, name, directive string) time.Duration {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(directive) + `\s+(\d+)s;?\s*$`)
	b, _ := Profile(name)
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: no %q", name, directive)
	}
	return time.Duration(atoi(t, string(m[1]))) * time.Second
}

func TestProxyExamples(t *testing.T) {
	idle := pingInterval + pongTimeout
	for _, d := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		if got := proxyTimeout(t, "nginx/wsgate.conf", d); got <= idle {
			t.Errorf("nginx %s = %v, want > %v", d, got, idle)
		}
	}
	if got := proxyTimeout(t, "haproxy/wsgate.cfg", "timeout tunnel"); got <= idle {
		t.Errorf("haproxy timeout tunnel = %v, want > %v", got, idle)
	}
	nginx, _ := Profile("nginx/wsgate.conf")
	for _, want := range []string{
		"proxy_http_version 1.1;",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;",
		"listen 443 ssl",
		"worker_connections",
		// A draining wsgate's 503 is retried on the next instance; no passive
		// marking (see sysctl/README.md, "Restarts behind the balancer").
		"proxy_next_upstream error timeout http_503;",
		"max_fails=0;",
	} {
		if !strings.Contains(string(nginx), want) {
			t.Errorf("nginx example lacks %q", want)
		}
	}
	haproxy, _ := Profile("haproxy/wsgate.cfg")
	for _, want := range []string{"mode http", "bind :443 ssl", "maxconn 1000000", "balance leastconn",
		"option httpchk GET /readyz", "retry-on conn-failure empty-response response-timeout 503", "option redispatch"} {
		if !strings.Contains(string(haproxy), want) {
			t.Errorf("haproxy example lacks %q", want)
		}
	}
}
