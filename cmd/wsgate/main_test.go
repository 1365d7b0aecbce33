package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
)

// runCLI runs one command line in-process and returns its exit status and
// what it wrote to stdout and stderr.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestDoctorThisHost: on a host whose hard open-files limit is below a
// million (this machine and CI: 20,000), doctor names that limit as the
// binding constraint and exits 1.
func TestDoctorThisHost(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI("doctor")
	if lim.Max >= 1_000_512 {
		t.Logf("hard limit %d: this host may be ready; exit %d", lim.Max, code)
		return
	}
	if code != 1 {
		t.Fatalf("doctor exited %d on a host with a %d open-files hard limit, want 1", code, lim.Max)
	}
	if !strings.Contains(out, "limited by open-files hard limit") {
		t.Fatalf("doctor did not name the open-files hard limit:\n%s", out)
	}
}

// TestCommandLine: the top level and every command answer -h/--help with
// their usage on stdout and exit 0; usage errors go to stderr with exit 2;
// nothing starts a server but "serve".
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   []string // substrings
		stderr   []string
		noStdout bool
	}{
		{args: nil, code: 2, stderr: []string{"usage: wsgate <command>", "serve ", "doctor ", "version ", "help "}, noStdout: true},
		{args: []string{"help"}, code: 0, stdout: []string{"usage: wsgate <command>", "serve ", "doctor "}},
		{args: []string{"-h"}, code: 0, stdout: []string{"usage: wsgate <command>"}},
		{args: []string{"--help"}, code: 0, stdout: []string{"usage: wsgate <command>"}},
		{args: []string{"version"}, code: 0, stdout: []string{"wsgate " + version + " go1."}},
		{args: []string{"--version"}, code: 0, stdout: []string{"wsgate " + version + " go1."}},
		{args: []string{"-version"}, code: 0, stdout: []string{"wsgate " + version}},
		{args: []string{"help", "serve"}, code: 0, stdout: []string{"usage: wsgate serve [flags]", "-max-queue-bytes int", "WSGATE_<FLAG>", "max_queue_bytes", "commands:"}},
		{args: []string{"serve", "-h"}, code: 0, stdout: []string{"usage: wsgate serve [flags]", "-listen string", "(default \"127.0.0.1:8080\")", "doctor "}},
		{args: []string{"serve", "--help"}, code: 0, stdout: []string{"usage: wsgate serve [flags]"}},
		{args: []string{"doctor", "-h"}, code: 0, stdout: []string{"usage: wsgate doctor [flags]", "-target int", "serve "}},
		{args: []string{"version", "--help"}, code: 0, stdout: []string{"usage: wsgate version"}},
		{args: []string{"nope"}, code: 2, stderr: []string{`unknown command "nope"`, "usage: wsgate <command>"}, noStdout: true},
		{args: []string{"--listen", "127.0.0.1:1"}, code: 2, stderr: []string{"flags follow the command: wsgate serve --listen"}, noStdout: true},
		{args: []string{"serve", "--bogus"}, code: 2, stderr: []string{"flag provided but not defined: -bogus", `run "wsgate serve -h"`}, noStdout: true},
		{args: []string{"serve", "now"}, code: 2, stderr: []string{`unexpected argument "now"`}, noStdout: true},
		{args: []string{"serve", "--broker", "kafka"}, code: 2, stderr: []string{`invalid value "kafka" for flag -broker: want memory or redis`}, noStdout: true},
		{args: []string{"serve", "--log-level", "loud"}, code: 2, stderr: []string{`invalid value "loud" for flag -log-level`}, noStdout: true},
		// Configuration errors found past the flag set are exit 2 as well,
		// before anything is bound or connected.
		{args: []string{"serve", "--api-listen", "127.0.0.1:0"}, code: 2, stderr: []string{"--api-listen needs --api-key"}, noStdout: true},
		{args: []string{"serve", "--broker", "redis", "--redis-url", "http://x"}, code: 2, stderr: []string{"--redis-url", "invalid URL scheme"}, noStdout: true},
		{args: []string{"doctor", "extra"}, code: 2, stderr: []string{`unexpected argument "extra"`}, noStdout: true},
		{args: []string{"doctor", "--processes", "0"}, code: 2, stderr: []string{"--processes must be at least 1"}, noStdout: true},
		{args: []string{"help", "nope"}, code: 2, stderr: []string{`unknown command "nope"`}, noStdout: true},
		{args: []string{"help", "serve", "doctor"}, code: 2, stderr: []string{"want one command name"}, noStdout: true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if tc.noStdout && out != "" {
				t.Errorf("stdout not empty:\n%s", out)
			}
		})
	}
}

// TestEveryCommandHasHelp: each command in the list (a command added later
// included) answers -h with its own usage and the list of every command.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		if c.name == "help" {
			continue
		}
		code, out, errOut := runCLI(c.name, "-h")
		if code != 0 || !strings.HasPrefix(out, "usage: wsgate "+c.name) {
			t.Errorf("wsgate %s -h: exit %d\nstdout:\n%s\nstderr:\n%s", c.name, code, out, errOut)
			continue
		}
		for _, other := range commands {
			if !strings.Contains(out, "  "+other.name+" ") {
				t.Errorf("wsgate %s -h does not list the command %s:\n%s", c.name, other.name, out)
			}
		}
	}
}

// serveSettings resolves serve's settings from args, the environment and
// the config file, without starting anything.
func serveSettings(t *testing.T, args ...string) (*serveFlags, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	f, code, ok := parseServe(args, &out, &errOut)
	if !ok {
		return nil, fmt.Errorf("exit %d: %s", code, strings.TrimSpace(errOut.String()))
	}
	return f, nil
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSettingsPrecedence: command line over environment over config file
// over default, in YAML and in JSON; the file sets any flag, and its
// namespaces start from the resolved history flags.
func TestSettingsPrecedence(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"wsgate.yaml", `
listen: 127.0.0.1:3
ping_interval: 3s
max_queue_bytes: 333
history_size: 7
echo: true
allowed_origins: [https://a.example, "*.b.example"]
trusted_proxies: [10.0.0.0/8, 192.168.1.7]
namespaces:
  chat:
    presence: true
`},
		{"wsgate.json", `{
  "listen": "127.0.0.1:3", "ping_interval": "3s", "max_queue_bytes": 333, "history_size": 7,
  "echo": true, "allowed_origins": ["https://a.example", "*.b.example"], "trusted_proxies": ["10.0.0.0/8", "192.168.1.7"],
  "namespaces": {"chat": {"presence": true}}
}`},
		{"wsgate.conf", `{"listen": "127.0.0.1:3", "ping_interval": 3, "max_queue_bytes": 333, "history_size": 7,
  "echo": true, "allowed_origins": "https://a.example,*.b.example", "trusted_proxies": "10.0.0.0/8,192.168.1.7",
  "namespaces": {"chat": {"presence": true}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.name, tc.content)
			t.Setenv("WSGATE_LISTEN", "127.0.0.1:2")
			t.Setenv("WSGATE_PING_INTERVAL", "2s")
			t.Setenv("WSGATE_HEARTBEAT", "tcp")
			f, err := serveSettings(t, "--config", path, "--listen", "127.0.0.1:1")
			if err != nil {
				t.Fatal(err)
			}
			c := f.cfg
			def := gateway.DefaultConfig()
			for _, check := range []struct {
				what      string
				got, want any
			}{
				{"listen (flag over env and file)", c.Listen, "127.0.0.1:1"},
				{"ping_interval (env over file)", c.PingInterval, 2 * time.Second},
				{"heartbeat (env)", c.Heartbeat, gateway.HeartbeatTCP},
				{"max_queue_bytes (file over default)", c.MaxQueueBytes, 333},
				{"echo (file)", c.Echo, true},
				{"allowed_origins (file)", strings.Join(c.AllowedOrigins, " "), "https://a.example *.b.example"},
				{"trusted_proxies (file)", strings.Join(c.TrustedProxies, " "), "10.0.0.0/8 192.168.1.7"},
				{"pong_timeout (default)", c.PongTimeout, def.PongTimeout},
				{"chat history (from the file's history_size)", c.Namespaces.For("chat:x").HistorySize, 7},
				{"chat presence (file)", c.Namespaces.For("chat:x").Presence, true},
				{"default namespace presence", c.Namespaces.For("x").Presence, false},
			} {
				if check.got != check.want {
					t.Errorf("%s = %v, want %v", check.what, check.got, check.want)
				}
			}
		})
	}
	t.Run("WSGATE_CONFIG", func(t *testing.T) {
		t.Setenv("WSGATE_CONFIG", writeFile(t, "c.yml", "max_queue_bytes: 444\n"))
		f, err := serveSettings(t)
		if err != nil {
			t.Fatal(err)
		}
		if f.cfg.MaxQueueBytes != 444 {
			t.Fatalf("max_queue_bytes %d from the file WSGATE_CONFIG names, want 444", f.cfg.MaxQueueBytes)
		}
	})
}

// TestConfigCoversEveryFlag: every serve flag but --config is a config-file
// key (its name with dashes as underscores), in YAML and JSON: a file that
// gives each a value other than its default sets them all. The keys come
// from the flag set, so a flag added later is covered without a new line.
func TestConfigCoversEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	newServeFlags(fs)
	var yamlDoc, jsonDoc []string
	want := map[string]string{}
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name == configFlag {
			return
		}
		key := configKey(fl.Name)
		var val string // the same literal is YAML and JSON
		switch v := fl.Value.(flag.Getter).Get().(type) {
		case bool:
			val, want[fl.Name] = fmt.Sprint(!v), fmt.Sprint(!v)
		case int:
			val, want[fl.Name] = fmt.Sprint(v+3), fmt.Sprint(v+3)
		case float64:
			val, want[fl.Name] = fmt.Sprint(v+2.5), fmt.Sprint(v+2.5)
		case time.Duration:
			val, want[fl.Name] = fmt.Sprintf("%q", (v+1500*time.Millisecond).String()), (v + 1500*time.Millisecond).String()
		case []string:
			val, want[fl.Name] = `["https://x.example", "*.y.example"]`, "https://x.example,*.y.example"
		default:
			s := "other"
			switch fl.Name {
			case "broker":
				s = "redis"
			case "heartbeat":
				s = "tcp"
			case "log-level":
				s, want[fl.Name] = "debug", "DEBUG"
			}
			val = fmt.Sprintf("%q", s)
			if want[fl.Name] == "" {
				want[fl.Name] = s
			}
		}
		yamlDoc = append(yamlDoc, key+": "+val)
		jsonDoc = append(jsonDoc, fmt.Sprintf("%q: %s", key, val))
	})
	if len(want) < 40 {
		t.Fatalf("only %d flags: the flag set did not load", len(want))
	}
	for name, content := range map[string]string{
		"all.yaml": strings.Join(yamlDoc, "\n") + "\n",
		"all.json": "{" + strings.Join(jsonDoc, ",\n") + "}",
	} {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			newServeFlags(fs)
			if err := fs.Parse([]string{"--config", writeFile(t, name, content)}); err != nil {
				t.Fatal(err)
			}
			if _, err := loadSettings(fs, gateway.DefaultConfig().DefaultNamespace); err != nil {
				t.Fatal(err)
			}
			for flagName, v := range want {
				if got := fs.Lookup(flagName).Value.String(); got != v {
					t.Errorf("--%s = %q after the file set %s, want %q", flagName, got, configKey(flagName), v)
				}
			}
		})
	}
}

// TestConfigRejects: typos are caught at every level with the key's name
// and the key probably meant; values of the wrong kind name the key; all
// problems of a file are reported at once.
func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                []string
	}{
		{"typo in a namespace", "c.json", `{"namespaces": {"chat": {"presense": true}}}`,
			[]string{`config PATH: namespace "chat": unknown key "presense"; did you mean "presence"?`}},
		{"typo in the default namespace (YAML)", "c.yaml", "namespaces:\n  \"\":\n    join_leeve: true\n",
			[]string{`namespace "": unknown key "join_leeve"; did you mean "join_leave"?`}},
		{"typo of a flag", "c.yaml", "max_queue_byte: 10\n",
			[]string{`unknown key "max_queue_byte"; did you mean "max_queue_bytes"?`}},
		{"flag spelling with dashes", "c.json", `{"max-queue-bytes": 10}`,
			[]string{`unknown key "max-queue-bytes"; did you mean "max_queue_bytes"?`}},
		{"namespace option at the top", "c.json", `{"presence": true}`,
			[]string{`unknown key "presence": it is a namespace option; put it under namespaces`}},
		{"typo of a namespace option at the top", "c.json", `{"presense": true}`,
			[]string{`unknown key "presense"; did you mean the namespace option "presence" (under namespaces)?`}},
		{"nothing close", "c.json", `{"colour": "blue"}`, []string{`unknown key "colour"`}},
		{"every problem at once", "c.yaml", "lisen: x\necho: yes\nmax_conns: lots\nnamespaces:\n  chat: {presense: true, history_size: many}\n",
			[]string{"config PATH: 5 problems:\n", `  unknown key "lisen"; did you mean "listen"?`, `  key "echo": want true or false, got "yes"`,
				`  key "max_conns": want an integer, got "lots"`, `  namespace "chat": unknown key "presense"`, `  namespace "chat": history_size: want an integer, got "many"`}},
		{"fraction for an integer", "c.json", `{"history_size": 1.5}`, []string{`key "history_size": want an integer, got 1.5`}},
		{"bad duration", "c.yaml", "ping_interval: soon\n", []string{`key "ping_interval": want a duration such as "5s"`}},
		{"list for a number", "c.yaml", "accept_rate: [1]\n", []string{`key "accept_rate": want a number, got a list`}},
		{"bool for a string", "c.yaml", "listen: true\n", []string{`key "listen": want a string, got true`}},
		{"null", "c.json", `{"listen": null}`, []string{`key "listen": want a string, got no value`}},
		{"bad choice", "c.yaml", "broker: kafka\n", []string{`key "broker": "kafka": want memory or redis`}},
		{"bad log level", "c.yaml", "log_level: loud\n", []string{`key "log_level": "loud"`}},
		{"bad origin item", "c.yaml", "allowed_origins: [1]\n", []string{`key "allowed_origins": item 0: want a string, got 1`}},
		{"config in a config", "c.json", `{"config": "other.json"}`, []string{`key "config": a config file cannot name another`}},
		{"namespaces not an object", "c.json", `{"namespaces": ["chat"]}`, []string{`key "namespaces": want an object of namespaces, got a list`}},
		{"namespace value of the wrong type", "c.json", `{"namespaces": {"chat": {"history_size": "many"}}}`,
			[]string{`namespace "chat": history_size: want an integer, got "many"`}},
		{"namespace rule", "c.yaml", "namespaces:\n  chat:\n    subscribe: everyone\n",
			[]string{`namespace "chat": subscribe: rule "everyone": want anyone, authenticated, claim or server`}},
		{"namespace not an object", "c.json", `{"namespaces": {"chat": true}}`, []string{`namespace "chat": want an object of options`}},
		{"JSON syntax", "c.json", `{"listen": "x",}`, []string{"JSON: invalid character"}},
		{"YAML syntax", "c.yaml", "listen: [x\n", []string{"yaml:"}},
		{"two JSON values", "c.json", `{} {}`, []string{"JSON: more than one value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file, tc.content)
			_, err := serveSettings(t, "--config", path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.want, "config "+path) {
				if w = strings.ReplaceAll(w, "PATH", path); !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	if _, err := serveSettings(t, "--config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil ||
		!strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// TestFlagsFromEnvironment: every serve flag reads WSGATE_<FLAG>; a flag
// on the command line wins; a bad value names the variable.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("WSGATE_MAX_QUEUE_BYTES", "12345")
	t.Setenv("WSGATE_PING_INTERVAL", "7s")
	t.Setenv("WSGATE_LISTEN", "127.0.0.1:1")
	f, err := serveSettings(t, "--listen", "127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.MaxQueueBytes != 12345 || f.cfg.PingInterval != 7*time.Second || f.cfg.Listen != "127.0.0.1:2" {
		t.Fatalf("got queue %d, ping %v, listen %s", f.cfg.MaxQueueBytes, f.cfg.PingInterval, f.cfg.Listen)
	}
	t.Setenv("WSGATE_MAX_QUEUE_BYTES", "lots")
	if _, err := serveSettings(t); err == nil || !strings.Contains(err.Error(), "WSGATE_MAX_QUEUE_BYTES") {
		t.Fatalf("bad value accepted: %v", err)
	}
}

// buildWsgate builds the real binary once per test run.
func buildWsgate(t *testing.T) string {
	t.Helper()
	bin, err := builds.Build("wsgate")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// builds holds the binary the tests run, built once (removed by TestMain).
var builds testutil.Builds

func TestMain(m *testing.M) {
	code := m.Run()
	builds.Cleanup()
	os.Exit(code)
}

// waitReady polls the debug listener's /readyz until it answers 200.
func waitReady(t *testing.T, debug string, logs *testutil.SyncBuffer, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get("http://" + debug + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgate not ready on %s:\n%s", debug, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBinaryExits: the real binary with no arguments prints usage and
// exits 2 without listening; "serve" drains on SIGINT (Ctrl-C) and exits 0.
func TestBinaryExits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildWsgate(t)
	var out bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out.String(), "usage: wsgate <command>") {
		t.Fatalf("wsgate without arguments: %v\n%s", err, out.String())
	}

	var logs testutil.SyncBuffer
	debug := testutil.FreeAddr(t)
	cmd = exec.Command(bin, "serve", "--listen", testutil.FreeAddr(t), "--debug-listen", debug)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitReady(t, debug, &logs, 20*time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wsgate after SIGINT: %v, want exit 0\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "shutdown complete") {
		t.Fatalf("no drain logged:\n%s", logs.String())
	}
}

// TestMakeRunCtrlC: "make run" interrupted as a terminal does it (SIGINT
// to the whole foreground process group) drains the gateway, which exits
// 0, and make reports no error. (GNU make itself then ends by the SIGINT it
// received, as it does for any interrupted target: the shell shows 130.)
func TestMakeRunCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make, which builds the binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is required (Debian package make)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	debug := testutil.FreeAddr(t)
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "run", "BIN="+t.TempDir())
	// Under `make test` the environment carries the outer make's jobserver
	// (MAKEFLAGS), whose descriptors this process does not have: a make
	// started with it fails ("wait: No child processes"). Run it as a user
	// would, from a plain shell.
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "MAKEOVERRIDES" {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "WSGATE_LISTEN="+testutil.FreeAddr(t), "WSGATE_DEBUG_LISTEN="+debug)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	defer syscall.Kill(-pgid, syscall.SIGKILL)
	waitReady(t, debug, &logs, 2*time.Minute) // make builds the binary first
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
		t.Fatalf("make run after Ctrl-C: %v, want exit 0 or make's own SIGINT\n%s", err, logs.String())
	}
	out := logs.String()
	if !strings.Contains(out, "shutdown complete") || strings.Contains(out, "***") || strings.Contains(out, "Error") {
		t.Fatalf("make run after Ctrl-C: want a drain and no make error:\n%s", out)
	}
}

// TestREADMEConfigExamples: the config file examples in README.md load as
// they are, and the error example is what wsgate prints for it.
func TestREADMEConfigExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Config file\n")
	if !ok {
		t.Fatal(`README has no "## Config file" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	block := func(lang string) string {
		_, rest, ok := strings.Cut(section, "```"+lang+"\n")
		if !ok {
			t.Fatalf("no %s example in the config file section", lang)
		}
		body, _, _ := strings.Cut(rest, "```")
		return body
	}
	for _, ext := range []string{"yaml", "json"} {
		f, err := serveSettings(t, "--config", writeFile(t, "wsgate."+ext, block(ext)))
		if err != nil {
			t.Fatalf("README's %s example: %v", ext, err)
		}
		if !f.cfg.Namespaces.For("chat:a").Presence || f.cfg.Namespaces.For("chat:a").HistorySize != 500 || f.cfg.MaxQueueBytes != 2097152 {
			t.Errorf("README's %s example did not set what it shows: %+v", ext, f.cfg.Namespaces.For("chat:a"))
		}
	}
	path := writeFile(t, "wsgate.yaml", "max_queue_bytes: lots\nnamespaces:\n  chat: {presense: true}\n")
	code, _, errOut := runCLI("serve", "--config", path)
	_, shown, _ := strings.Cut(section, "```\nwsgate: config")
	shown, _, _ = strings.Cut("wsgate: config"+shown, "```")
	want := strings.ReplaceAll(strings.TrimSpace(shown), "wsgate.yaml", path)
	if code != 2 || strings.TrimSpace(errOut) != want {
		t.Errorf("exit %d, printed:\n%s\nREADME shows:\n%s", code, errOut, want)
	}
}

// TestServeRefusesBusyListener: an API or debug address that cannot be
// bound ends serve with an error naming the flag, before any client is
// accepted, instead of a gateway running without it.
func TestServeRefusesBusyListener(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildWsgate(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, flags := range [][]string{
		{"--api-listen", busy.Addr().String(), "--api-key", "k"},
		{"--debug-listen", busy.Addr().String()},
	} {
		var out bytes.Buffer
		cmd := exec.Command(bin, append([]string{"serve", "--listen", testutil.FreeAddr(t)}, flags...)...)
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(out.String(), flags[0]) {
				t.Errorf("serve %v on a busy address: %v, want a non-zero exit naming %s\n%s", flags, err, flags[0], out.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("serve %v on a busy address still runs after 20 s", flags)
		}
	}
}

// TestServeRefusesABadTrustedProxy: a --trusted-proxies item that is no
// CIDR or address stops `wsgate serve` with exit status 2, naming it.
func TestServeRefusesABadTrustedProxy(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--listen", "127.0.0.1:0", "--trusted-proxies", "10.0.0.0/8,lb.internal"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `--trusted-proxies "lb.internal"`) {
		t.Fatalf("exit %d, stderr %q; want 2 and the item named", code, stderr.String())
	}
}

// TestConfigYAMLNumbersForStrings: a YAML number given for a string flag
// is taken as written (YAML would make 0123456789 the float 1.23456789e+08
// and 0755 the octal 493), while numeric flags still get YAML's number.
func TestConfigYAMLNumbersForStrings(t *testing.T) {
	path := writeFile(t, "wsgate.yaml", `
jwt_secret: 0123456789
api_key: 0755
node_id: 007
redis_prefix: 1_000
redis_url: 0x1F
max_conns: 0x10
accept_rate: 1e3
history_ttl: 90
`)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	newServeFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSettings(fs, gateway.DefaultConfig().DefaultNamespace); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"jwt-secret": "0123456789", "api-key": "0755", "node-id": "007", "redis-prefix": "1_000", "redis-url": "0x1F",
		"max-conns": "16", "accept-rate": "1000", "history-ttl": "1m30s",
	} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}
