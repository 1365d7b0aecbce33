// Package js_test runs the JavaScript client's tests from go test: the unit
// tests under test/ with Node's test runner, and the integration tests under
// itest/ against real wsgate processes (and redis-server), orchestrated here
// so that `go test ./...` and `make test` run them.
//
// An integration test gets the URLs of the gateways it needs in environment
// variables and drives faults through a small HTTP control endpoint served
// by this process (WSGATE_CONTROL): POST /kill/a, /term/a, /restart/a, …
package js_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// wsgateBinary builds cmd/wsgate once per test run.
func wsgateBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "wsgate-js-test")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "wsgate")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/wsgate/wsgate/cmd/wsgate").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build wsgate: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// nodeModules runs `npm ci` here when the pinned packages are missing
// (make deps does the same; a bare `go test` must work too).
func nodeModules(t *testing.T) {
	t.Helper()
	missing := false
	for _, pkg := range []string{"@msgpack/msgpack", "ws"} {
		if _, err := os.Stat(filepath.Join("node_modules", pkg, "package.json")); err != nil {
			missing = true
		}
	}
	if !missing {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("node_modules is missing and npm is not on PATH (make deps installs Node.js): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund").CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
}

// runNode runs `node --test` over files with env added, logs its report,
// and fails the test if any JS test failed.
func runNode(t *testing.T, timeout time.Duration, env []string, files ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH (Node.js 20+ is required): %v", err)
	}
	nodeModules(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec"}, files...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("node --test %s:\n%s", strings.Join(files, " "), out.String())
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish within %v", timeout)
	}
	if err != nil {
		t.Fatalf("node --test: %v", err)
	}
}

// TestJSUnit runs the client's unit tests (fake socket, no server).
func TestJSUnit(t *testing.T) {
	files, err := filepath.Glob("test/*.test.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no unit tests found: %v", err)
	}
	runNode(t, 2*time.Minute, nil, files...)
}

// gatewayProc is one wsgate process; restart starts it again on the same
// address (clients come back to the same URL).
type gatewayProc struct {
	t      *testing.T
	args   []string
	addr   string
	debug  string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startGateway runs `wsgate serve` with flags and waits until it is ready.
func startGateway(t *testing.T, flags ...string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{t: t, addr: freeAddr(t), debug: freeAddr(t), logs: &syncBuffer{}}
	g.args = append([]string{"serve", "--listen", g.addr, "--debug-listen", g.debug, "--drain-window", "300ms"}, flags...)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("wsgate %s output:\n%s", g.addr, g.logs.String())
		}
	})
	return g
}

func (g *gatewayProc) start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd != nil {
		return fmt.Errorf("wsgate %s is still running", g.addr)
	}
	cmd := exec.Command(wsgateBinary(g.t), g.args...)
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start wsgate: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	g.cmd, g.exited = cmd, exited
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := c.Get("http://" + g.debug + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("wsgate exited at start:\n%s", g.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wsgate did not become ready:\n%s", g.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals the process and waits (bounded) for it to exit; SIGKILL
// follows a SIGTERM that does not end it in time.
func (g *gatewayProc) stop(sig syscall.Signal) error {
	g.mu.Lock()
	cmd, exited := g.cmd, g.exited
	g.cmd = nil
	g.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("wsgate %s ignored %v for 10s", g.addr, sig)
	}
}

func (g *gatewayProc) url(path string) string { return "ws://" + g.addr + path }

// controlServer lets a JS test kill, terminate and restart named gateways:
// POST /kill/NAME, /term/NAME (both return once the process exited),
// /restart/NAME (returns once it is ready again).
func controlServer(t *testing.T, gws map[string]*gatewayProc) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{op}/{name}", func(w http.ResponseWriter, r *http.Request) {
		g := gws[r.PathValue("name")]
		if g == nil {
			http.Error(w, "no such gateway", http.StatusNotFound)
			return
		}
		var err error
		switch r.PathValue("op") {
		case "kill":
			err = g.stop(syscall.SIGKILL)
		case "term":
			err = g.stop(syscall.SIGTERM)
		case "restart":
			err = g.start()
		default:
			http.Error(w, "unknown operation", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		t.Logf("control: %s %s at %s", r.PathValue("op"), r.PathValue("name"), time.Now().Format("15:04:05.000"))
		fmt.Fprintln(w, "ok")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// TestJSResumeRedis is acceptance 3 of issue 13: JS clients in Node
// subscribed through gateway A, a publisher on gateway B, one Redis; A is
// SIGKILLed (or SIGTERMed: 1001 drain) mid-stream and restarted while the
// publications go on. Every subscriber must get every publication exactly
// once, in order, with recovered:true on its resume (itest/resume.test.js).
func TestJSResumeRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server, two wsgate processes and Node (-short)")
	}
	for _, sig := range []string{"kill", "term"} {
		t.Run(sig, func(t *testing.T) {
			rs := redistest.StartStandalone(t)
			flags := []string{"--broker", "redis", "--redis-url", rs.URL(), "--history-size", "10000"}
			a := startGateway(t, flags...)
			b := startGateway(t, flags...)
			ctl := controlServer(t, map[string]*gatewayProc{"a": a, "b": b})
			runNode(t, 3*time.Minute, []string{
				"WSGATE_A_URL=" + a.url("/ws"),
				"WSGATE_B_URL=" + b.url("/ws"),
				"WSGATE_CONTROL=" + ctl,
				"WSGATE_FAULT=" + sig,
				"WSGATE_SUBSCRIBERS=100",
				"WSGATE_PUBLICATIONS=400",
			}, "itest/resume.test.js")
		})
	}
}

// TestJSEpochChangeMemory: with the embedded broker a restart loses the
// channel's history: every JS subscriber must be told (a "lost" event of
// kind "unrecovered", reason "epoch changed") and then get the new epoch's
// publications (itest/epoch.test.js).
func TestJSEpochChangeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a wsgate process and Node (-short)")
	}
	a := startGateway(t)
	ctl := controlServer(t, map[string]*gatewayProc{"a": a})
	runNode(t, 2*time.Minute, []string{
		"WSGATE_A_URL=" + a.url("/ws"),
		"WSGATE_CONTROL=" + ctl,
		"WSGATE_SUBSCRIBERS=20",
	}, "itest/epoch.test.js")
}
