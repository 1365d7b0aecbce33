package sysctl

import (
	"debug/elf"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The deployment kit (profiles/container: Dockerfile, compose.yaml;
// profiles/kubernetes/wsgate.yaml) is checked here without a container
// engine or a cluster: every value that must agree with the binary or with
// the host profiles is read from the files and compared — ports, probe
// ports, drain window against grace periods, sysctls and file limits, user
// ids — and, in TestDeployKitAgainstBinary, every flag and WSGATE_*
// variable against `wsgate serve -h`, every probe path against a running
// wsgate, and the Dockerfile's build command is run as written.

// The kit's files, by profile name.
var kitFiles = []string{
	"container/Dockerfile", "container/compose.yaml", "kubernetes/wsgate.yaml",
	"haproxy/wsgate.cfg", "nginx/wsgate.conf", "gateway/wsgate.service",
	"gateway/99-wsgate.conf", "gateway/99-wsgate-limits.conf",
}

func shippedKit(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range kitFiles {
		b, err := Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return files
}

// kitUse is one place the kit names a flag, an environment variable or a
// probe path.
type kitUse struct{ where, name string }

// kitReport is what checkKit found: problems, and the flags, variables
// and probe paths to check against the binary.
type kitReport struct {
	problems []string
	flags    []kitUse // flag names, without dashes
	envs     []kitUse // WSGATE_* names
	probes   []kitUse // HTTP paths on the debug listener
	// composeSed is the nginx service's substitution, as sed expressions.
	composeSed []string
}

func (r *kitReport) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// checkKit runs every check that needs no process. goVersion is go.mod's
// go line.
func checkKit(files map[string][]byte, goVersion string) kitReport {
	var r kitReport
	// The host profile's unit fixes the ports everything else must use.
	unit := map[string]string{}
	for _, l := range strings.Split(string(files["gateway/wsgate.service"]), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			unit[k] = v
		}
	}
	exec := strings.Fields(unit["ExecStart"])
	if len(exec) < 2 || exec[1] != "serve" {
		r.problem("wsgate.service: ExecStart %q does not run serve", unit["ExecStart"])
		return r
	}
	unitFlags := r.flagsOf("wsgate.service ExecStart", exec[2:])
	wsPort := r.portOf("wsgate.service", unitFlags, "listen")
	debugPort := r.portOf("wsgate.service", unitFlags, "debug-listen")
	p := kitPorts{ws: wsPort, debug: debugPort}
	r.checkReserved("wsgate.service", unitFlags, files)
	r.checkNodeID("wsgate.service", unitFlags, nil)
	// The unit runs behind the multi-instance proxy examples: every
	// instance must share the publications through Redis.
	if v, _ := flagValue(unitFlags, "broker"); v != "redis" {
		r.problem("wsgate.service: --broker %q, want redis (the instances behind the proxies share one Redis)", v)
	}
	if v, _ := flagValue(unitFlags, "redis-url"); !strings.HasPrefix(v, "redis") {
		r.problem("wsgate.service: --redis-url %q, want the shared Redis's URL", v)
	}

	uid := r.checkDockerfile(parseDockerfile(files["container/Dockerfile"]), goVersion, p)
	r.checkCompose(files, p)
	r.checkKubernetes(files, p, uid)
	r.checkProxies(files, p)
	return r
}

type kitPorts struct{ ws, debug int }

// flagsOf parses a command line's flags and records their names.
func (r *kitReport) flagsOf(where string, args []string) []flagArg {
	fs, err := parseFlagArgs(args)
	if err != nil {
		r.problem("%s: %v", where, err)
	}
	for _, f := range fs {
		r.flags = append(r.flags, kitUse{where, f.name})
	}
	return fs
}

// portOf returns the port of an address flag ("0.0.0.0:8080"), 0 when
// absent or malformed (a problem).
func (r *kitReport) portOf(where string, fs []flagArg, name string) int {
	v, ok := flagValue(fs, name)
	if !ok {
		r.problem("%s: no --%s", where, name)
		return 0
	}
	_, port, err := net.SplitHostPort(v)
	n, err2 := strconv.Atoi(port)
	if err != nil || err2 != nil {
		r.problem("%s: --%s %q is not host:port", where, name, v)
	}
	return n
}

// checkReserved: every port a gateway listens on (clients, health checks,
// server API) is in the gateway profile's ip_local_reserved_ports, so no
// outbound socket can take it from the ephemeral range while wsgate
// restarts.
func (r *kitReport) checkReserved(where string, fs []flagArg, files map[string][]byte) {
	reserved := sysctlValues(files["gateway/99-wsgate.conf"])["net.ipv4.ip_local_reserved_ports"]
	for _, name := range []string{"listen", "debug-listen", "api-listen"} {
		if _, ok := flagValue(fs, name); !ok {
			continue
		}
		if port := r.portOf(where, fs, name); !portInList(port, reserved) {
			r.problem("%s: --%s port %d is not in gateway/99-wsgate.conf's ip_local_reserved_ports %q", where, name, port, reserved)
		}
	}
}

// checkNodeID: no gateway pins its node id. The default is new for every
// process; a fixed one (a pod or service name) survives a container
// restart, and the restarted process hands out the client ids
// (node-seq-fd) of the one before, which backends and presence may still
// hold.
func (r *kitReport) checkNodeID(where string, fs []flagArg, env map[string]string) {
	_, inFlags := flagValue(fs, "node-id")
	_, inEnv := env["WSGATE_NODE_ID"]
	if inFlags || inEnv {
		r.problem("%s: sets the node id; leave it to the default, unique per process", where)
	}
}

// portInList reports whether port is in a kernel port list ("8080,9000-9010").
func portInList(port int, list string) bool {
	for _, item := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(item), "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && l <= port && port <= h {
			return true
		}
	}
	return false
}

// sysctlValues parses the gateway sysctl profile ("-" prefixes dropped).
func sysctlValues(b []byte) map[string]string {
	kv := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[strings.TrimPrefix(strings.TrimSpace(k), "-")] = strings.Join(strings.Fields(v), " ")
		}
	}
	return kv
}

func (r *kitReport) checkSysctls(where string, got map[string]string, files map[string][]byte) {
	want := sysctlValues(files["gateway/99-wsgate.conf"])
	if _, ok := got["net.core.somaxconn"]; !ok {
		r.problem("%s: no net.core.somaxconn (the accept queue of a reconnect storm)", where)
	}
	for k, v := range got {
		if w, ok := want[k]; !ok {
			r.problem("%s: sysctl %s is not in gateway/99-wsgate.conf", where, k)
		} else if strings.Join(strings.Fields(v), " ") != w {
			r.problem("%s: sysctl %s = %q, gateway/99-wsgate.conf has %q", where, k, v, w)
		}
	}
}

var (
	golangImage = regexp.MustCompile(`^golang:(\d+(?:\.\d+)*)\S*\s+(?i:as)\s+(\S+)$`)
	goBuildOut  = regexp.MustCompile(`-o\s+(\S+)`)
)

// checkDockerfile checks the two stages and returns the run user's uid.
func (r *kitReport) checkDockerfile(d dockerfile, goVersion string, p kitPorts) int {
	froms := d.all("FROM")
	if len(froms) < 2 {
		r.problem("Dockerfile: %d stages, want a build stage and a run stage", len(froms))
		return 0
	}
	m := golangImage.FindStringSubmatch(froms[0])
	switch {
	case m == nil:
		r.problem("Dockerfile: build stage %q is not golang:<version> AS <name>", froms[0])
	case versionLess(m[1], goVersion):
		r.problem("Dockerfile: build image Go %s is older than go.mod's go %s", m[1], goVersion)
	}
	last := froms[len(froms)-1]
	if !strings.HasPrefix(last, "gcr.io/distroless/static") && last != "scratch" {
		r.problem("Dockerfile: run stage %q is not a static base without a shell (distroless/static or scratch)", last)
	}
	var out string
	for _, run := range d.all("RUN") {
		if strings.Contains(run, "go build") {
			if !strings.Contains(run, "CGO_ENABLED=0") || !strings.HasSuffix(run, "./cmd/wsgate") {
				r.problem("Dockerfile: %q does not build ./cmd/wsgate with CGO_ENABLED=0", run)
			}
			if m := goBuildOut.FindStringSubmatch(run); m != nil {
				out = m[1]
			}
		}
	}
	var dst string
	for _, c := range d.all("COPY") {
		if f := strings.Fields(c); len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[1] == out {
			dst = f[2]
		}
	}
	if out == "" || dst == "" {
		r.problem("Dockerfile: no go build -o <file> copied into the run stage")
	}
	uid := 0
	users := d.all("USER")
	if len(users) == 0 {
		r.problem("Dockerfile: no USER: the image would run as root")
	} else if u, _, _ := strings.Cut(users[len(users)-1], ":"); true {
		var err error
		if uid, err = strconv.Atoi(u); err != nil || uid == 0 {
			r.problem("Dockerfile: USER %q must be a numeric non-root uid (runAsNonRoot needs a number)", users[len(users)-1])
		}
	}
	entry, err := execForm(strings.Join(d.all("ENTRYPOINT"), ""))
	if err != nil || len(entry) != 1 || entry[0] != dst {
		r.problem("Dockerfile: ENTRYPOINT %v (%v), want [%q] in exec form: no shell to run it, and wsgate as PID 1 gets SIGTERM", entry, err, dst)
	}
	cmd, err := execForm(strings.Join(d.all("CMD"), ""))
	if err != nil || len(cmd) == 0 || cmd[0] != "serve" {
		r.problem("Dockerfile: CMD %v (%v), want [\"serve\", …] in exec form", cmd, err)
		return uid
	}
	fs := r.flagsOf("Dockerfile CMD", cmd[1:])
	ports := []int{r.portOf("Dockerfile CMD", fs, "listen"), r.portOf("Dockerfile CMD", fs, "debug-listen")}
	if ports[0] != p.ws || ports[1] != p.debug {
		r.problem("Dockerfile CMD: ports %v, the host profile's unit uses %d and %d", ports, p.ws, p.debug)
	}
	var exposed []int
	for _, e := range d.all("EXPOSE") {
		for _, f := range strings.Fields(e) {
			n, _ := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
			exposed = append(exposed, n)
		}
	}
	if !slices.Equal(exposed, ports) {
		r.problem("Dockerfile: EXPOSE %v, CMD listens on %v", exposed, ports)
	}
	return uid
}

// versionLess compares dotted version numbers.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// drainWindow is a gateway's --drain-window, from its flags or its
// environment; the kit must set it where the grace period is (no hidden
// default to compare against).
func (r *kitReport) drainWindow(where string, fs []flagArg, env map[string]string) time.Duration {
	v, ok := flagValue(fs, "drain-window")
	if !ok {
		v, ok = env["WSGATE_DRAIN_WINDOW"]
	}
	if !ok {
		r.problem("%s: set --drain-window (or WSGATE_DRAIN_WINDOW) beside the grace period it must fit in", where)
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.problem("%s: drain window %q: %v", where, v, err)
	}
	return d
}

// shutdownMargin is what a gateway needs after its drain window: the last
// batch's close handshakes (0.5 s), the forced closes (≤ 1 s) and exit.
const shutdownMargin = 3 * time.Second

var sedExpr = regexp.MustCompile(`-e '([^']*)'`)

func (r *kitReport) checkCompose(files map[string][]byte, p kitPorts) {
	c, err := parseCompose(files["container/compose.yaml"])
	if err != nil {
		r.problem("%v", err)
		return
	}
	soft, hard := limitsNofile(files["gateway/99-wsgate-limits.conf"])
	var gateways []string
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		gateways = append(gateways, name)
		where := "compose " + name
		if s.Build.Context != "../../.." || s.Build.Dockerfile != "sysctl/profiles/container/Dockerfile" {
			r.problem("%s: build %+v, want the repository root and sysctl/profiles/container/Dockerfile", where, *s.Build)
		}
		if len(s.Command) == 0 || s.Command[0] != "serve" {
			r.problem("%s: command %q does not run serve", where, s.Command)
			continue
		}
		fs := r.flagsOf(where+" command", s.Command[1:])
		for k := range s.Environment {
			r.envs = append(r.envs, kitUse{where + " environment", k})
		}
		if got := r.portOf(where, fs, "listen"); got != p.ws {
			r.problem("%s: --listen port %d, nginx upstreams and the unit use %d", where, got, p.ws)
		}
		if got := r.portOf(where, fs, "debug-listen"); got != p.debug {
			r.problem("%s: --debug-listen port %d, the probes use %d", where, got, p.debug)
		}
		r.checkReserved(where, fs, files)
		r.checkNodeID(where, fs, s.Environment)
		if s.Environment["WSGATE_BROKER"] != "redis" {
			r.problem("%s: WSGATE_BROKER %q, want redis (three instances share one Redis)", where, s.Environment["WSGATE_BROKER"])
		}
		if u, err := url.Parse(s.Environment["WSGATE_REDIS_URL"]); err != nil || c.Services[u.Hostname()].Image == "" {
			r.problem("%s: WSGATE_REDIS_URL %q does not name a service of this file", where, s.Environment["WSGATE_REDIS_URL"])
		}
		drain := r.drainWindow(where, fs, s.Environment)
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil || grace < drain+shutdownMargin {
			r.problem("%s: stop_grace_period %q must be at least the drain window %v + %v", where, s.StopGracePeriod, drain, shutdownMargin)
		}
		if s.StopSignal != "" && s.StopSignal != "SIGTERM" {
			r.problem("%s: stop_signal %s, the drain starts on SIGTERM", where, s.StopSignal)
		}
		if n := s.Ulimits["nofile"]; string(n.Soft) != soft || string(n.Hard) != hard {
			r.problem("%s: ulimits nofile %s/%s, gateway/99-wsgate-limits.conf has %s/%s", where, n.Soft, n.Hard, soft, hard)
		}
		sysctls := map[string]string{}
		for k, v := range s.Sysctls {
			sysctls[k] = string(v)
		}
		r.checkSysctls(where, sysctls, files)
	}
	slices.Sort(gateways)
	if len(gateways) < 2 {
		r.problem("compose: %d gateways built from the Dockerfile, want several behind nginx", len(gateways))
	}
	r.checkComposeNginx(files, c, gateways, p)
}

func limitsNofile(b []byte) (soft, hard string) {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "*" && f[2] == "nofile" {
			if f[1] == "soft" {
				soft = f[3]
			} else {
				hard = f[3]
			}
		}
	}
	return soft, hard
}

// checkComposeNginx: the nginx service renders the shipped example with
// sed; the result must send to exactly the compose gateways, on their port.
func (r *kitReport) checkComposeNginx(files map[string][]byte, c composeFile, gateways []string, p kitPorts) {
	n, ok := c.Services["nginx"]
	if !ok {
		r.problem("compose: no nginx service")
		return
	}
	if !slices.Contains(n.Volumes, "../nginx/wsgate.conf:/etc/wsgate/nginx.conf:ro") || len(n.Command) != 3 ||
		!strings.Contains(n.Command[2], "/etc/wsgate/nginx.conf > /etc/nginx/nginx.conf") {
		r.problem("compose nginx: does not render the shipped ../nginx/wsgate.conf into /etc/nginx/nginx.conf")
		return
	}
	for _, m := range sedExpr.FindAllStringSubmatch(n.Command[2], -1) {
		r.composeSed = append(r.composeSed, m[1])
	}
	rendered, err := applySed(r.composeSed, string(files["nginx/wsgate.conf"]))
	if err != nil {
		r.problem("compose nginx: %v", err)
		return
	}
	var upstreams []string
	for _, m := range regexp.MustCompile(`(?m)^[ \t]*server[ \t]+([^\s;{]+)[^{\n]*;[ \t]*$`).FindAllStringSubmatch(rendered, -1) {
		upstreams = append(upstreams, m[1])
	}
	var want []string
	for _, g := range gateways {
		want = append(want, g+":"+strconv.Itoa(p.ws))
	}
	if !slices.Equal(upstreams, want) {
		r.problem("compose nginx: rendered upstreams %q, want the gateways %q", upstreams, want)
	}
	if strings.Contains(rendered, "proxy_bind") || strings.Contains(rendered, "/var/log/nginx/") {
		r.problem("compose nginx: the rendered config still binds source addresses or logs to files")
	}
	for _, port := range n.Ports {
		_, inner, _ := strings.Cut(port, ":")
		if !strings.Contains(rendered, "listen "+inner+" ") {
			r.problem("compose nginx: publishes %s but the config does not listen on %s", port, inner)
		}
	}
}

// applySed applies sed expressions of the two forms the kit uses — s<d>re<d>repl<d>
// (first match per line) and /re/d — to text, line by line. Each must
// match somewhere, or the shipped file changed under it.
func applySed(exprs []string, text string) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	for _, e := range exprs {
		var re *regexp.Regexp
		var repl string
		del := false
		switch {
		case strings.HasPrefix(e, "/") && strings.HasSuffix(e, "/d"):
			re, del = regexp.MustCompile(e[1:len(e)-2]), true
		case len(e) > 3 && e[0] == 's':
			parts := strings.Split(e[2:], e[1:2])
			if len(parts) != 3 || parts[2] != "" {
				return "", fmt.Errorf("sed expression %q: want s/re/repl/", e)
			}
			re, repl = regexp.MustCompile(parts[0]), parts[1]
		default:
			return "", fmt.Errorf("sed expression %q: only s/re/repl/ and /re/d are understood", e)
		}
		matched := false
		var out []string
		for _, l := range lines {
			loc := re.FindStringIndex(l)
			if loc == nil {
				out = append(out, l)
				continue
			}
			matched = true
			if !del {
				out = append(out, l[:loc[0]]+repl+l[loc[1]:])
			}
		}
		if !matched {
			return "", fmt.Errorf("sed expression %q matches nothing in the shipped nginx/wsgate.conf", e)
		}
		lines = out
	}
	return strings.Join(lines, ""), nil
}

func (r *kitReport) checkKubernetes(files map[string][]byte, p kitPorts, uid int) {
	objs, err := parseManifests(files["kubernetes/wsgate.yaml"])
	if err != nil {
		r.problem("kubernetes: %v", err)
		return
	}
	var dep *k8sDeployment
	var services []k8sService
	var pdbs []k8sPDB
	for _, o := range objs {
		var err error
		switch o.Kind {
		case "Deployment":
			dep = &k8sDeployment{}
			err = o.node.Decode(dep)
		case "Service":
			var s k8sService
			err = o.node.Decode(&s)
			services = append(services, s)
		case "PodDisruptionBudget":
			var b k8sPDB
			err = o.node.Decode(&b)
			pdbs = append(pdbs, b)
		}
		if err != nil {
			r.problem("kubernetes %s %s: %v", o.Kind, o.Metadata.Name, err)
		}
	}
	if dep == nil || len(dep.Spec.Template.Spec.Containers) != 1 {
		r.problem("kubernetes: want one Deployment with one container")
		return
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	where := "kubernetes container " + c.Name
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		r.problem("%s: args %q do not run serve", where, c.Args)
		return
	}
	fs := r.flagsOf(where+" args", c.Args[1:])
	env := map[string]string{}
	for _, e := range c.Env {
		r.envs = append(r.envs, kitUse{where + " env", e.Name})
		env[e.Name] = e.Value
	}
	for _, secret := range []string{"WSGATE_REDIS_URL", "WSGATE_API_KEY"} {
		if !slices.ContainsFunc(c.Env, func(e k8sEnv) bool {
			return e.Name == secret && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}) {
			r.problem("%s: %s must come from a Secret", where, secret)
		}
	}
	if v, _ := flagValue(fs, "broker"); v != "redis" {
		r.problem("%s: --broker %q, want redis", where, v)
	}
	r.checkReserved(where, fs, files)
	r.checkNodeID(where, fs, env)
	named := map[string]int{}
	for _, port := range c.Ports {
		named[port.Name] = port.ContainerPort
	}
	for flag, name := range map[string]string{"listen": "ws", "debug-listen": "debug", "api-listen": "api"} {
		if got := r.portOf(where, fs, flag); got != named[name] {
			r.problem("%s: --%s port %d, containerPort %q is %d", where, flag, got, name, named[name])
		}
	}
	if named["ws"] != p.ws || named["debug"] != p.debug {
		r.problem("%s: ports ws %d, debug %d; the host profile's unit uses %d and %d", where, named["ws"], named["debug"], p.ws, p.debug)
	}
	for kind, pr := range map[string]*k8sProbe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if pr == nil || pr.HTTPGet == nil {
			r.problem("%s: no %s httpGet", where, kind)
			continue
		}
		port, err := strconv.Atoi(string(pr.HTTPGet.Port))
		if err != nil {
			port = named[string(pr.HTTPGet.Port)]
		}
		if port != named["debug"] || port == 0 {
			r.problem("%s: %s on port %q, the debug listener is %d", where, kind, pr.HTTPGet.Port, named["debug"])
		}
		r.probes = append(r.probes, kitUse{where + " " + kind, pr.HTTPGet.Path})
	}
	drain := r.drainWindow(where, fs, env)
	pre := 0
	if s := c.Lifecycle.PreStop.Sleep; s != nil {
		pre = s.Seconds
	}
	if pre == 0 {
		r.problem("%s: no preStop sleep: endpoints drop a terminating pod asynchronously", where)
	}
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if need := time.Duration(pre)*time.Second + drain + shutdownMargin; grace < need {
		r.problem("%s: terminationGracePeriodSeconds %v < preStop %ds + drain window %v + %v", where, grace, pre, drain, shutdownMargin)
	}
	sc := pod.SecurityContext
	if !sc.RunAsNonRoot || sc.RunAsUser != uid || uid == 0 {
		r.problem("%s: runAsNonRoot %v, runAsUser %d; the image's USER is %d", where, sc.RunAsNonRoot, sc.RunAsUser, uid)
	}
	sysctls := map[string]string{}
	for _, s := range sc.Sysctls {
		sysctls[s.Name] = string(s.Value)
	}
	r.checkSysctls(where, sysctls, files)
	r.checkSelectors(dep, services, pdbs, named)
}

func (r *kitReport) checkSelectors(dep *k8sDeployment, services []k8sService, pdbs []k8sPDB, named map[string]int) {
	labels := dep.Spec.Template.Metadata.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(dep.Spec.Selector.MatchLabels) {
		r.problem("kubernetes Deployment: selector does not match its pod labels")
	}
	if len(services) == 0 || len(pdbs) == 0 {
		r.problem("kubernetes: %d Services and %d PodDisruptionBudgets, want both", len(services), len(pdbs))
	}
	for _, s := range services {
		if !matches(s.Spec.Selector) {
			r.problem("kubernetes Service: selector %v does not match the gateways", s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			if _, ok := named[string(p.TargetPort)]; !ok {
				r.problem("kubernetes Service: targetPort %q is not a container port name", p.TargetPort)
			}
		}
	}
	for _, b := range pdbs {
		if !matches(b.Spec.Selector.MatchLabels) {
			r.problem("kubernetes PodDisruptionBudget: selector does not match the gateways")
		}
		if n, err := strconv.Atoi(string(b.Spec.MaxUnavailable)); err != nil || n < 1 || n >= dep.Spec.Replicas {
			r.problem("kubernetes PodDisruptionBudget: maxUnavailable %q, want 1 ≤ n < %d replicas", b.Spec.MaxUnavailable, dep.Spec.Replicas)
		}
	}
}

// checkProxies: the proxy examples reach wsgate on the kit's ports, and
// HAProxy's health check is a probe path like the others.
func (r *kitReport) checkProxies(files map[string][]byte, p kitPorts) {
	cfg := string(files["haproxy/wsgate.cfg"])
	if m := regexp.MustCompile(`option httpchk GET (\S+)`).FindStringSubmatch(cfg); m == nil {
		r.problem("haproxy: no option httpchk GET <path>")
	} else {
		r.probes = append(r.probes, kitUse{"haproxy option httpchk", m[1]})
	}
	if m := regexp.MustCompile(`check port (\d+)`).FindStringSubmatch(cfg); m == nil || m[1] != strconv.Itoa(p.debug) {
		r.problem("haproxy: health check port %v, wsgate's debug listener is %d", m, p.debug)
	}
	for name, text := range map[string]string{"haproxy": cfg, "nginx": string(files["nginx/wsgate.conf"])} {
		for _, m := range regexp.MustCompile(`10\.0\.0\.2\d:(\d+)`).FindAllStringSubmatch(text, -1) {
			if m[1] != strconv.Itoa(p.ws) {
				r.problem("%s: upstream port %s, wsgate listens on %d", name, m[1], p.ws)
			}
		}
	}
}

// goModVersion reads the go line of the module's go.mod.
func goModVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// TestDeployKit: the shipped kit agrees with itself, the host profiles and
// the unit's ports, and every check has something to check.
func TestDeployKit(t *testing.T) {
	r := checkKit(shippedKit(t), goModVersion(t))
	for _, p := range r.problems {
		t.Error(p)
	}
	if len(r.flags) < 20 || len(r.envs) < 8 || len(r.probes) != 3 || len(r.composeSed) == 0 {
		t.Errorf("found %d flags, %d variables, %d probe paths, %d sed expressions: the parsers missed something",
			len(r.flags), len(r.envs), len(r.probes), len(r.composeSed))
	}
}

// TestDeployKitCatchesChanges: each kind of drift the kit test exists for
// is reported — a renamed or moved port, a drain window that no longer
// fits the grace period, a probe on the wrong port, a sysctl that differs
// from the host profile, a root user, a config the nginx substitution no
// longer matches.
func TestDeployKitCatchesChanges(t *testing.T) {
	cases := []struct{ file, old, new, want string }{
		{"kubernetes/wsgate.yaml", "containerPort: 9090", "containerPort: 9091", "containerPort \"debug\" is 9091"},
		{"kubernetes/wsgate.yaml", "- name: debug\n", "- name: metrics\n", "readinessProbe on port \"debug\""},
		{"kubernetes/wsgate.yaml", "targetPort: ws", "targetPort: websocket", "targetPort \"websocket\""},
		{"kubernetes/wsgate.yaml", "--drain-window=10s", "--drain-window=25s", "terminationGracePeriodSeconds"},
		{"kubernetes/wsgate.yaml", `value: "65535"`, `value: "4096"`, "gateway/99-wsgate.conf has \"65535\""},
		{"kubernetes/wsgate.yaml", "runAsUser: 65532", "runAsUser: 1000", "runAsUser 1000"},
		{"container/compose.yaml", "WSGATE_DRAIN_WINDOW: 10s", "WSGATE_DRAIN_WINDOW: 30s", "stop_grace_period"},
		{"container/compose.yaml", "hostname: gw2\n    command: [\"serve\", \"--listen\", \"0.0.0.0:8080\"",
			"hostname: gw2\n    command: [\"serve\", \"--listen\", \"0.0.0.0:8081\"", "--listen port 8081"},
		{"container/compose.yaml", "soft: 1048576", "soft: 65536", "ulimits nofile 65536"},
		{"container/Dockerfile", "EXPOSE 8080 9090", "EXPOSE 8080 9091", "EXPOSE [8080 9091]"},
		{"container/Dockerfile", "USER 65532:65532", "USER 0:0", "numeric non-root uid"},
		{"container/Dockerfile", "FROM golang:1.26.8-bookworm AS build", "FROM golang:1.21-bookworm AS build", "older than go.mod"},
		{"haproxy/wsgate.cfg", "check port 9090", "check port 9091", "health check port"},
		{"nginx/wsgate.conf", "10.0.0.22:8080", "10.0.0.32:8080", "matches nothing"},
		{"gateway/wsgate.service", "--debug-listen 0.0.0.0:9090", "--debug-listen 0.0.0.0:9100", "the probes use 9100"},
		{"gateway/wsgate.service", " --broker redis", "", "wsgate.service: --broker \"\""},
		{"container/compose.yaml", `"--api-listen", "0.0.0.0:9000"]`, `"--api-listen", "0.0.0.0:9000", "--node-id", "gw1"]`, "compose gw1: sets the node id"},
		{"kubernetes/wsgate.yaml", "- --broker=redis\n", "- --broker=redis\n            - --node-id=gw\n", "kubernetes container wsgate: sets the node id"},
		{"gateway/99-wsgate.conf", "ip_local_reserved_ports = 8080,9000,9090", "ip_local_reserved_ports = 8080,9000", "--debug-listen port 9090 is not in"},
	}
	for _, tc := range cases {
		files := shippedKit(t)
		if !strings.Contains(string(files[tc.file]), tc.old) {
			t.Fatalf("%s no longer contains %q: update this case", tc.file, tc.old)
		}
		files[tc.file] = []byte(strings.Replace(string(files[tc.file]), tc.old, tc.new, 1))
		r := checkKit(files, goModVersion(t))
		if !slices.ContainsFunc(r.problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s: %q → %q: no problem mentioning %q; got %q", tc.file, tc.old, tc.new, tc.want, r.problems)
		}
	}
}

// staticELF reports whether the executable at path needs no dynamic
// loader and no shared library.
func staticELF(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s has a %v program header: dynamically linked", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s needs %v", path, libs)
	}
	return nil
}

// checkAgainstBinary compares the kit's flags, variables and probe paths
// with the binary: its `serve -h` flag names and what its debug listener
// answers (status by path).
func checkAgainstBinary(r kitReport, flags map[string]bool, status func(path string) int) []string {
	var problems []string
	for _, u := range r.flags {
		if !flags[u.name] {
			problems = append(problems, fmt.Sprintf("%s: --%s is not a flag of wsgate serve", u.where, u.name))
		}
	}
	for _, u := range r.envs {
		if f, ok := envFlag(u.name); !ok || !flags[f] {
			problems = append(problems, fmt.Sprintf("%s: %s names no flag of wsgate serve (WSGATE_<FLAG>)", u.where, u.name))
		}
	}
	for _, u := range r.probes {
		if code := status(u.name); code != 200 {
			problems = append(problems, fmt.Sprintf("%s: %s answers %d on a ready wsgate, want 200", u.where, u.name, code))
		}
	}
	return problems
}

var helpFlag = regexp.MustCompile(`(?m)^\s+-{1,2}([a-z][a-z0-9-]*)`)

// TestDeployKitAgainstBinary builds wsgate with the Dockerfile's own build
// command (the output must be a static executable that knows its
// version), then checks every flag, WSGATE_* variable and probe path the
// kit uses against it, and that the compose file's sed renders the nginx
// example exactly as the check above assumed. Renaming a flag, a variable
// or a probe path in the binary, or in a manifest, fails it.
func TestDeployKitAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wsgate")
	}
	files := shippedKit(t)
	r := checkKit(files, goModVersion(t))
	bin := buildLikeDockerfile(t, parseDockerfile(files["container/Dockerfile"]))
	if err := staticELF(bin); err != nil {
		t.Errorf("the Dockerfile's build is not static: %v", err)
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), "kit-test") {
		t.Errorf("%s version: %q (%v), want the VERSION build argument", bin, out, err)
	}
	help, _ := exec.Command(bin, "serve", "-h").CombinedOutput() // exit 0 or 2 by convention
	flags := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(help), -1) {
		flags[m[1]] = true
	}
	if !flags["listen"] || !flags["drain-window"] || len(flags) < 30 {
		t.Fatalf("wsgate serve -h lists %d flags; cannot read its help:\n%s", len(flags), help)
	}
	status := startDebugListener(t, bin)
	for _, p := range checkAgainstBinary(r, flags, status) {
		t.Error(p)
	}

	// The same check fails on a renamed flag, variable or probe path.
	for _, mutate := range []func(*kitReport){
		func(k *kitReport) { k.flags = append(k.flags, kitUse{"mutation", "drain-windw"}) },
		func(k *kitReport) { k.envs = append(k.envs, kitUse{"mutation", "WSGATE_REDIS_ULR"}) },
		func(k *kitReport) { k.probes = append(k.probes, kitUse{"mutation", "/ready"}) },
	} {
		m := r
		mutate(&m)
		if got := checkAgainstBinary(m, flags, status); !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, "mutation") }) {
			t.Errorf("a renamed use went unnoticed: %q", got)
		}
	}

	// compose's nginx command runs sed; applySed must mean the same.
	cmd := exec.Command("sed", append(sedArgs(r.composeSed), "-")...)
	cmd.Stdin = strings.NewReader(string(files["nginx/wsgate.conf"]))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sed: %v", err)
	}
	want, _ := applySed(r.composeSed, string(files["nginx/wsgate.conf"]))
	if string(out) != want {
		t.Errorf("sed renders the compose nginx config differently from the check's reading of it")
	}
}

func sedArgs(exprs []string) []string {
	var a []string
	for _, e := range exprs {
		a = append(a, "-e", e)
	}
	return a
}

// buildLikeDockerfile runs the Dockerfile's `go build` RUN line as the
// build stage's /bin/sh would, from the repository root, with VERSION set,
// writing the binary to a temporary directory instead of /out.
func buildLikeDockerfile(t *testing.T, d dockerfile) string {
	t.Helper()
	var run string
	for _, r := range d.all("RUN") {
		if strings.Contains(r, "go build") {
			run = r
		}
	}
	m := goBuildOut.FindStringSubmatch(run)
	if m == nil {
		t.Fatalf("Dockerfile: no go build -o line")
	}
	bin := t.TempDir() + "/wsgate"
	cmd := exec.Command("sh", "-c", strings.Replace(run, "-o "+m[1], "-o "+bin, 1))
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION=kit-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", run, err, out)
	}
	return bin
}

// startDebugListener runs `wsgate serve` (embedded broker) on free
// loopback ports until the test ends and returns a GET-status function
// for its debug listener, once /readyz says 200.
func startDebugListener(t *testing.T, bin string) func(path string) int {
	t.Helper()
	free := func() string {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	debug := free()
	cmd := exec.Command(bin, "serve", "--listen", free(), "--debug-listen", debug)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("wsgate after SIGTERM: %v\n%s", err, logs.String())
		}
	})
	client := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	status := func(path string) int {
		resp, err := client.Get("http://" + debug + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(15 * time.Second)
	for status("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("wsgate not ready after 15s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return status
}
