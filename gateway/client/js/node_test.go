// Package js_test runs the JavaScript client's tests from go test: the unit
// tests under test/ with Node's test runner, and the integration tests under
// itest/ against real wsgate processes (and redis-server), orchestrated here
// so that `go test ./...` and `make test` run them.
//
// An integration test gets the URLs of the gateways it needs in environment
// variables and drives faults through a small HTTP control endpoint served
// by this process (WSGATE_CONTROL): POST /kill/a, /term/a, /restart/a,
// /kill/redis, … (see controlServer).
package js_test

import (
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
	"github.com/wsgate/wsgate/internal/testutil"
)

// builds holds the wsgate binary (removed by TestMain).
var builds testutil.Builds

func TestMain(m *testing.M) {
	code := m.Run()
	builds.Cleanup()
	os.Exit(code)
}

// wsgateBinary builds cmd/wsgate once per test run.
func wsgateBinary(t *testing.T) string {
	t.Helper()
	path, err := builds.Build("wsgate")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// nodeModules runs `npm ci` here when the pinned packages are missing
// (make deps does the same; a bare `go test` must work too).
func nodeModules(t *testing.T) {
	t.Helper()
	missing := false
	for _, pkg := range []string{"@msgpack/msgpack", "ws", "typescript"} {
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
// and fails the test if any JS test failed. While node runs, this (the
// test) goroutine carries out the control operations the JS test asks for
// (ctl may be nil), so they may fail the test the usual way.
func runNode(t *testing.T, timeout time.Duration, env []string, ctl <-chan controlOp, files ...string) {
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
	var out testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for done := false; !done; {
		select {
		case op := <-ctl:
			op.done <- op.fn()
		case err = <-exited:
			done = true
		}
	}
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
	if testing.Short() {
		t.Skip("runs Node and tsc (-short); `node --test test/*.test.js` runs them alone")
	}
	files, err := filepath.Glob("test/*.test.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no unit tests found: %v", err)
	}
	runNode(t, 2*time.Minute, nil, nil, files...)
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
	logs   *testutil.SyncBuffer
}

// startGateway runs `wsgate serve` with flags and waits until it is ready.
func startGateway(t *testing.T, flags ...string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{t: t, addr: testutil.FreeAddr(t), debug: testutil.FreeAddr(t), logs: &testutil.SyncBuffer{}}
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

// controlOp is one fault a JS test asked for, carried out by runNode on
// the test goroutine.
type controlOp struct {
	fn   func() error
	done chan error
}

// controlServer lets a JS test inject faults: POST /OP/NAME runs ops["OP/NAME"]
// (e.g. "kill/a", "restart/a", "kill/redis") and answers once it is done.
func controlServer(t *testing.T, ops map[string]func() error) (url string, ctl <-chan controlOp) {
	t.Helper()
	ch := make(chan controlOp)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{op}/{name}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("op") + "/" + r.PathValue("name")
		fn := ops[key]
		if fn == nil {
			http.Error(w, "unknown operation "+key, http.StatusNotFound)
			return
		}
		op := controlOp{fn: fn, done: make(chan error, 1)}
		select {
		case ch <- op:
		case <-r.Context().Done():
			return
		}
		if err := <-op.done; err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		t.Logf("control: %s done at %s", key, time.Now().Format("15:04:05.000"))
		fmt.Fprintln(w, "ok")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String(), ch
}

// gatewayOps are the control operations on named gateways.
func gatewayOps(gws map[string]*gatewayProc) map[string]func() error {
	ops := map[string]func() error{}
	for name, g := range gws {
		ops["kill/"+name] = func() error { return g.stop(syscall.SIGKILL) }
		ops["term/"+name] = func() error { return g.stop(syscall.SIGTERM) }
		ops["restart/"+name] = g.start
	}
	return ops
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
			url, ctl := controlServer(t, gatewayOps(map[string]*gatewayProc{"a": a, "b": b}))
			runNode(t, 3*time.Minute, []string{
				"WSGATE_A_URL=" + a.url("/ws"),
				"WSGATE_B_URL=" + b.url("/ws"),
				"WSGATE_CONTROL=" + url,
				"WSGATE_FAULT=" + sig,
				"WSGATE_SUBSCRIBERS=100",
				"WSGATE_PUBLICATIONS=400",
			}, ctl, "itest/resume.test.js")
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
	url, ctl := controlServer(t, gatewayOps(map[string]*gatewayProc{"a": a}))
	runNode(t, 2*time.Minute, []string{
		"WSGATE_A_URL=" + a.url("/ws"),
		"WSGATE_CONTROL=" + url,
		"WSGATE_SUBSCRIBERS=20",
	}, ctl, "itest/epoch.test.js")
}

// TestJSEpochPushRedis: Redis restarts empty under a running gateway, so
// the channel's history and offsets start again. Subscribers stay
// connected; each must get the gateway's epoch push as a "lost" event of
// kind "epoch" and then the new epoch's publications from its first offset
// (itest/redis-epoch.test.js).
func TestJSEpochPushRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server, a wsgate process and Node (-short)")
	}
	rs := redistest.StartStandalone(t)
	a := startGateway(t, "--broker", "redis", "--redis-url", rs.URL())
	ops := gatewayOps(map[string]*gatewayProc{"a": a})
	ops["kill/redis"] = func() error { rs.Kill(); return nil }
	ops["restart/redis"] = func() error { rs.Restart(); return nil }
	url, ctl := controlServer(t, ops)
	runNode(t, 2*time.Minute, []string{
		"WSGATE_A_URL=" + a.url("/ws"),
		"WSGATE_CONTROL=" + url,
		"WSGATE_SUBSCRIBERS=20",
	}, ctl, "itest/redis-epoch.test.js")
}
