package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/sysctl"
)

// The balancer configs under test are the shipped examples
// (sysctl/profiles/nginx/wsgate.conf, sysctl/profiles/haproxy/wsgate.cfg),
// rendered for this deployment by the substitution documented in
// sysctl/README.md, "Rendering the proxy examples": example addresses,
// ports and paths are replaced, lines naming an example instance the
// deployment does not have are removed, nothing else changes. A
// substitution whose example text is no longer in the shipped file fails
// the test, so the file, the document and the test cannot drift apart.

// substitution replaces every occurrence of one piece of example text.
type substitution struct{ old, new string }

// exampleInstances is how many wsgate instances the examples list, as
// 10.0.0.21:8080 … 10.0.0.24:8080; their source addresses are
// 10.0.0.11 … 10.0.0.14.
const exampleInstances = 4

func exampleInstance(i int) string { return "10.0.0.2" + strconv.Itoa(i+1) + ":8080" }
func exampleSource(i int) string   { return "10.0.0.1" + strconv.Itoa(i+1) }

// render applies drop (remove every line containing one of these) and
// then subs, in order, to the shipped profile name.
func render(name string, drop []string, subs []substitution) (string, error) {
	shipped, err := sysctl.Profile(name)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(shipped), "\n") {
		keep := true
		for _, d := range drop {
			if strings.Contains(line, d) {
				keep = false
			}
		}
		if keep {
			b.WriteString(line)
		}
	}
	out := b.String()
	for _, s := range subs {
		if !strings.Contains(out, s.old) {
			return "", fmt.Errorf("%s: %q is not in the shipped file: the file and the substitution documented in sysctl/README.md disagree", name, s.old)
		}
		out = strings.ReplaceAll(out, s.old, s.new)
	}
	return out, nil
}

// addressSubs are the substitutions both examples share: the addresses
// of the first count instances (and lines for example instances beyond
// them dropped), then the four upstream source addresses.
func addressSubs(n network, count int) (drop []string, subs []substitution) {
	for i := range exampleInstances {
		if i >= count {
			drop = append(drop, exampleInstance(i))
			continue
		}
		subs = append(subs, substitution{exampleInstance(i), n.wsAddr(i)})
	}
	for i := range 4 {
		subs = append(subs, substitution{exampleSource(i), n.sourceIP(i)})
	}
	return drop, subs
}

// lbFiles are a balancer's files in the test's temporary directory.
type lbFiles struct {
	dir    string
	config string
	certs  certs
}

func newLBFiles(t *testing.T, name string) lbFiles {
	dir := t.TempDir()
	return lbFiles{dir: dir, config: filepath.Join(dir, name), certs: makeCerts(t, dir)}
}

// renderNginx renders the nginx example for n.
func renderNginx(n network, f lbFiles) (string, error) { return renderNginxFor(n, f, instances) }

// renderNginxFor renders the nginx example for the first count instances
// of n.
func renderNginxFor(n network, f lbFiles, count int) (string, error) {
	drop, subs := addressSubs(n, count)
	subs = append(subs,
		substitution{"listen 80 ", "listen " + n.httpAddr() + " "},
		substitution{"listen 443 ", "listen " + n.httpsAddr() + " "},
		substitution{"/etc/nginx/tls/ws.example.com.crt", f.certs.certFile},
		substitution{"/etc/nginx/tls/ws.example.com.key", f.certs.keyFile},
		substitution{"/var/log/nginx/", f.dir + "/"},
	)
	return render("nginx/wsgate.conf", drop, subs)
}

// renderHAProxy renders the HAProxy example for n.
func renderHAProxy(n network, f lbFiles) (string, error) {
	drop, subs := addressSubs(n, instances)
	subs = append(subs,
		substitution{"port 9090", "port " + strconv.Itoa(n.debugPort)},
		substitution{"bind :443 ", "bind " + n.httpsAddr() + " "},
		substitution{"bind :80\n", "bind " + n.httpAddr() + "\n"},
		substitution{"/etc/haproxy/tls/ws.example.com.pem", f.certs.pemFile},
		substitution{"/run/haproxy/admin.sock", filepath.Join(f.dir, "admin.sock")},
		substitution{"log /dev/log local0", "log stdout format raw local0"},
		// HAProxy refuses to start (strict-limits) when it cannot raise
		// its fd limit to ~2 x maxconn; this host's hard limit is 20,000.
		substitution{"maxconn 1000000", "maxconn " + strconv.Itoa(haproxyMaxconn())},
	)
	return render("haproxy/wsgate.cfg", drop, subs)
}

// haproxyMaxconn is the largest maxconn this process's open-file hard
// limit lets HAProxy start with: it needs two fds per connection and a
// few dozen more.
func haproxyMaxconn() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Max > 2_000_000 {
		return 1000000
	}
	return int(lim.Max-1000) / 2
}

// nginxArgs runs nginx in the foreground with its pid file and startup
// error log in the temporary directory (-g adds directives the example
// leaves to the distribution's defaults).
func nginxArgs(f lbFiles, extra ...string) []string {
	args := []string{sbin("nginx"), "-c", f.config, "-e", filepath.Join(f.dir, "startup.log"),
		"-g", "daemon off; pid " + filepath.Join(f.dir, "nginx.pid") + ";"}
	return append(args, extra...)
}

func haproxyArgs(f lbFiles, extra ...string) []string {
	return append([]string{sbin("haproxy"), "-f", f.config}, extra...)
}

// sbin finds a daemon on PATH or, where PATH lacks it (a non-root shell),
// in /usr/sbin, where Debian installs it (make deps).
func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// balancer is one of the two load balancers under test.
type balancer struct {
	name   string
	file   string // the rendered config's name
	render func(network, lbFiles) (string, error)
	// check is the syntax check command; run is the foreground command.
	check, run func(lbFiles) []string
}

var balancers = map[string]balancer{
	"nginx": {
		name: "nginx", file: "nginx.conf", render: renderNginx,
		check: func(f lbFiles) []string { return nginxArgs(f, "-t") },
		run:   func(f lbFiles) []string { return nginxArgs(f) },
	},
	"haproxy": {
		name: "haproxy", file: "haproxy.cfg", render: renderHAProxy,
		check: func(f lbFiles) []string { return haproxyArgs(f, "-c") },
		// -db: stay in the foreground, no daemon.
		run: func(f lbFiles) []string { return haproxyArgs(f, "-db") },
	},
}

// prepare renders b's config for n into a new directory and checks it
// with the balancer's own syntax check.
func (b balancer) prepare(t *testing.T, n network) lbFiles {
	t.Helper()
	f := newLBFiles(t, b.file)
	text, err := b.render(n, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := b.check(f)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s\nrendered config:\n%s", strings.Join(argv, " "), err, out, text)
	}
	t.Logf("%s: %s", strings.Join(argv, " "), strings.TrimSpace(string(out)))
	return f
}

// start runs b in the foreground on its rendered config.
func (b balancer) start(t *testing.T, n network, f lbFiles) *lbProcess {
	t.Helper()
	return startLB(t, b.name, filepath.Join(f.dir, "output.log"), n.httpsAddr(), b.run(f)...)
}

// TestRenderedConfigsPassChecks: both examples, rendered for loopback,
// pass `nginx -t` and `haproxy -c`, and the rendering left no example
// address, port or path behind.
func TestRenderedConfigsPassChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx and haproxy")
	}
	n := newNetwork(t)
	for _, name := range []string{"nginx", "haproxy"} {
		t.Run(name, func(t *testing.T) {
			b := balancers[name]
			f := b.prepare(t, n)
			text, err := os.ReadFile(f.config)
			if err != nil {
				t.Fatal(err)
			}
			if left := regexp.MustCompile(`10\.0\.0\.\d+|/etc/(nginx|haproxy)/tls|/var/log|/run/haproxy`).FindAllString(string(text), -1); len(left) > 0 {
				t.Errorf("rendered %s still names %q", name, left)
			}
			for i := range instances {
				if !strings.Contains(string(text), n.wsAddr(i)) {
					t.Errorf("rendered %s lacks instance %s", name, n.wsAddr(i))
				}
			}
		})
	}
}

// TestRenderRefusesAStaleSubstitution: a substitution whose example text
// is not in the shipped file is an error, not a silent no-op.
func TestRenderRefusesAStaleSubstitution(t *testing.T) {
	_, err := render("nginx/wsgate.conf", nil, []substitution{{"listen 8443 ", "listen 1.2.3.4:1 "}})
	if err == nil || !strings.Contains(err.Error(), "sysctl/README.md") {
		t.Fatalf("err = %v, want a pointer to the documented substitution", err)
	}
	out, err := render("nginx/wsgate.conf", []string{exampleInstance(3)}, nil)
	if err != nil || strings.Contains(out, exampleInstance(3)) || !strings.Contains(out, exampleInstance(2)) {
		t.Fatalf("drop: err %v; fourth instance still there or third gone", err)
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
