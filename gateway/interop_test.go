package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The interop tests drive /echo, and the protocol tests /ws, with WebSocket
// and MessagePack clients that nobody on this project wrote (npm's ws and
// @msgpack/msgpack, Python's websockets and msgpack). The Go clients in
// echo_clients_test.go share our reading of RFC 6455 through the same
// ecosystem; a mistake both sides make the same way only shows up against an
// independent implementation.
//
// They install what they need instead of skipping: a skipped interop test
// looks green in CI while testing nothing.

// interopTimeout bounds one client script run. The scripts give up after
// 20 s on their own and say where; this is the backstop for a script (or
// interpreter) that hangs outright.
const interopTimeout = 60 * time.Second

// TestInteropNode runs testdata/node/echo_client.mjs (npm "ws") against /echo.
func TestInteropNode(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH (Node.js 20+ is required for this test): %v", err)
	}
	dir := filepath.Join("testdata", "node")
	ensureNodeModules(t, dir)

	addr := startEcho(t, nil)
	runInterop(t, dir, node, "echo_client.mjs", "ws://"+addr+"/echo")
}

// nodeModulesMu makes the parallel tests that need node_modules install
// it once: two `npm ci` in one directory remove each other's files.
var nodeModulesMu sync.Mutex

// ensureNodeModules runs `npm ci` when the pinned packages are not installed.
// It checks the packages themselves rather than just node_modules/, so an
// install that was interrupted halfway is redone rather than trusted.
func ensureNodeModules(t *testing.T, dir string) {
	t.Helper()
	nodeModulesMu.Lock()
	defer nodeModulesMu.Unlock()
	installed := true
	for _, pkg := range []string{"ws", "@msgpack/msgpack"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			installed = false
		}
	}
	if installed {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("%s/node_modules is missing and npm is not on PATH to install it: %v", dir, err)
	}
	// npm ci installs exactly what package-lock.json pins (and fails if
	// package.json disagrees with it), so every run tests the same versions.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}

// TestProtocolNodeMsgpack runs testdata/node/protocol_client.mjs (npm "ws" +
// "@msgpack/msgpack") against /ws with wsgate.v1.msgpack.
func TestProtocolNodeMsgpack(t *testing.T) {
	t.Parallel()
	runNodeProtocol(t, "msgpack")
}

// TestProtocolNodeJSON runs testdata/node/protocol_client.mjs against /ws
// with wsgate.v1.json; it also publishes from a msgpack connection, so the
// JSON side of a binary publication (b64) is checked too.
func TestProtocolNodeJSON(t *testing.T) {
	t.Parallel()
	runNodeProtocol(t, "json")
}

func runNodeProtocol(t *testing.T, mode string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH (Node.js 20+ is required for this test): %v", err)
	}
	dir := filepath.Join("testdata", "node")
	ensureNodeModules(t, dir)

	addr := startEcho(t, nil)
	runInterop(t, dir, node, "protocol_client.mjs", "ws://"+addr+"/ws", mode)
}

// TestProtocolPython runs testdata/python/protocol_client.py (websockets +
// msgpack) against /ws with wsgate.v1.msgpack.
func TestProtocolPython(t *testing.T) {
	t.Parallel()
	requirePython(t, "websockets", "msgpack")

	addr := startEcho(t, nil)
	runInterop(t, filepath.Join("testdata", "python"), pythonInterp, "protocol_client.py", "ws://"+addr+"/ws")
}

// pythonInterp is the Debian interpreter: python3-websockets installs into
// its dist-packages, which a python3 from elsewhere on PATH (pyenv, a venv)
// would not see.
const pythonInterp = "/usr/bin/python3"

// TestInteropPython runs testdata/python/echo_client.py (websockets) against
// /echo.
func TestInteropPython(t *testing.T) {
	t.Parallel()
	requirePython(t, "websockets")

	addr := startEcho(t, nil)
	runInterop(t, filepath.Join("testdata", "python"), pythonInterp, "echo_client.py", "ws://"+addr+"/echo")
}

// debPackage maps a Python module the scripts import to the Debian package
// that provides it for pythonInterp.
var debPackage = map[string]string{
	"websockets": "python3-websockets",
	"msgpack":    "python3-msgpack",
}

// requirePython fails the test, naming the apt packages to install, unless
// pythonInterp exists and can import every module.
func requirePython(t *testing.T, modules ...string) {
	t.Helper()
	pkgs := "python3"
	for _, m := range modules {
		pkgs += " " + debPackage[m]
	}
	if _, err := os.Stat(pythonInterp); err != nil {
		t.Fatalf("%s not found (apt-get install -y %s): %v", pythonInterp, pkgs, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), interopTimeout)
	defer cancel()
	probe := exec.CommandContext(ctx, pythonInterp, "-c", "import "+strings.Join(modules, ", "))
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import %s; install the Debian packages: apt-get install -y %s\n%v\n%s",
			pythonInterp, strings.Join(modules, ", "), pkgs, err, out)
	}
}

// runInterop runs one client script in dir and fails the test with its
// combined output if it exits non-zero; on success the output (versions,
// negotiated extensions) goes to the test log.
func runInterop(t *testing.T, dir, interp string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), interopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, interp, args...)
	cmd.Dir = dir
	// Keeps __pycache__ out of testdata/.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	// Without it a grandchild holding the output pipe could keep Wait
	// blocked past the context's deadline.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: killed after %v: %v\n%s", interp, args, interopTimeout, ctx.Err(), out)
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", interp, args, err, out)
	}
	t.Logf("%s", out)
}
