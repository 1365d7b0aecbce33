// Package redistest runs real redis-server processes owned by one test:
// standalone servers and small clusters on free loopback ports, with their
// files under t.TempDir(), and helpers to kill, restart, pause and poke them.
//
// Everything a Server or Cluster starts is stopped and reaped by t.Cleanup,
// even when the test fails midway. The package starts no goroutines: child
// processes are reaped by polling rather than by a goroutine blocked in
// cmd.Wait, so goleak checks pass even when they run before the cleanups
// (defer goleak.VerifyNone(t) does).
//
// redis-server and redis-cli must be on PATH (make deps installs them).
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/freeport"
)

const (
	readyTimeout = 10 * time.Second
	// termGrace is how long a SIGTERMed server gets to exit before SIGKILL.
	termGrace = 2 * time.Second
	// reapTimeout bounds the wait after SIGKILL, which cannot be ignored but
	// can be delayed by the kernel; past it something is badly wrong.
	reapTimeout = 10 * time.Second
	// doTimeout bounds Do so a paused or wedged server fails a test instead
	// of hanging it until the global test timeout.
	doTimeout = 30 * time.Second
	// startAttempts bounds retries after losing a free port to someone else
	// between FreePort closing it and redis-server binding it.
	startAttempts = 8
	pollInterval  = 10 * time.Millisecond
)

// errAddrInUse marks a start that failed only because the port was taken.
var errAddrInUse = errors.New("address already in use")

// Option configures StartStandalone and StartCluster.
type Option func(*config)

type config struct {
	args []string
}

// WithArgs appends redis-server command-line flags, e.g.
// WithArgs("--maxclients", "64"). They come last, so they override the
// package's defaults.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Server is one redis-server process owned by a test. Its port stays the
// same across Kill and Restart. Methods are safe for concurrent use, but
// Restart must be called from the test goroutine (it calls t.Fatal).
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	logPath string
	port    int
	busPort int // cluster bus port; 0 for a standalone server
	extra   []string

	mu   sync.Mutex
	proc *os.Process // nil when no process is running (or it was reaped)
	last string      // how the previous process ended, for error messages
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago
// (freeport.Addr); it is released before returning, so callers must cope
// with losing it (StartStandalone retries).
func FreePort(t testing.TB) int {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("redistest: free port %q: %v", addr, err)
	}
	return n
}

// StartStandalone starts a redis-server on a free 127.0.0.1 port and waits
// until it answers PING. The server is stopped by t.Cleanup. A test that
// needs one is process-level: with -short it is skipped.
func StartStandalone(t testing.TB, opts ...Option) *Server {
	t.Helper()
	SkipShort(t)
	return startServer(t, false, opts)
}

// SkipShort skips a test that starts redis-server under go test -short:
// the unit layer runs without processes.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level: starts redis-server (runs without -short)")
	}
}

func startServer(t testing.TB, cluster bool, opts []Option) *Server {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		t:     t,
		bin:   lookBin(t, "redis-server"),
		dir:   t.TempDir(),
		extra: cfg.args,
	}
	s.logPath = filepath.Join(s.dir, "redis.log")
	// Registered before the first start so a failure halfway through still
	// leaves nothing running. It runs before t.TempDir's own removal (LIFO).
	t.Cleanup(s.shutdown)

	for attempt := 1; ; attempt++ {
		s.port = FreePort(t)
		if cluster {
			// Two FreePort calls in a row may return the same port:
			// each only checks that its port is free now.
			s.busPort = FreePort(t)
			for s.busPort == s.port {
				s.busPort = FreePort(t)
			}
		}
		s.mu.Lock()
		err := s.launch()
		s.mu.Unlock()
		if err == nil {
			return s
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			t.Fatalf("redistest: %v", err)
		}
	}
}

var (
	binMu    sync.Mutex
	binPaths = map[string]string{}
)

func lookBin(t testing.TB, name string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binPaths[name]; ok {
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("redistest: %s not found (install redis-server and redis-tools, e.g. make deps): %v", name, err)
	}
	binPaths[name] = p
	return p
}

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		// No RDB snapshots or AOF: Restart must come back empty, and nothing
		// may be written outside the test's directory.
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "no",
		// Redis 7 refuses DEBUG (SLEEP, ...) unless enabled at startup.
		"--enable-debug-command", "yes",
		"--daemonize", "no",
	}
	if s.busPort != 0 {
		a = append(a,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, "nodes-"+strconv.Itoa(s.port)+".conf"),
			"--cluster-node-timeout", "2000",
			// An explicit bus port rather than the default port+10000, which
			// may be taken or exceed 65535 for high ephemeral ports.
			"--cluster-port", strconv.Itoa(s.busPort),
			// Without it a node that never received a MEET (a one-master
			// cluster) reports an empty IP in CLUSTER SLOTS/SHARDS.
			"--cluster-announce-ip", "127.0.0.1",
		)
	}
	return append(a, s.extra...)
}

// launch starts a process on s.port and waits until it is ready. Called
// with s.mu held and no process running.
func (s *Server) launch() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := logf.Stat()
	if err != nil {
		logf.Close()
		return err
	}
	logFrom := st.Size()
	// %q shows the empty arguments (--save "") that a plain join would hide.
	fmt.Fprintf(logf, "--- redistest: starting %s %q\n", s.bin, s.args())

	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	// An *os.File needs no copying goroutine: the child writes it directly.
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = procAttr()
	err = cmd.Start()
	logf.Close() // the child holds its own descriptor
	if err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.proc = cmd.Process
	// cmd.Wait is deliberately never called: reapLocked polls instead, so no
	// goroutine sits in wait4 for the life of the server.
	return s.waitReady(logFrom)
}

// waitReady polls until the server answers PING and reports our pid, so a
// different server that won the port race is never mistaken for ours.
func (s *Server) waitReady(logFrom int64) error {
	pid := s.proc.Pid
	want := "process_id:" + strconv.Itoa(pid) + "\r\n"
	deadline := time.Now().Add(readyTimeout)
	for {
		if s.reapLocked() {
			log := s.logSince(logFrom)
			err := fmt.Errorf("redis-server on %s exited during startup (%s); log:\n%s", s.Addr(), s.last, log)
			if strings.Contains(log, "Address already in use") {
				err = fmt.Errorf("%w: %v", errAddrInUse, err)
			}
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		rs, err := roundTrip(ctx, s.Addr(), []string{"PING"}, []string{"INFO", "server"})
		cancel()
		if err == nil && rs[0] == "PONG" {
			if info, ok := rs[1].(string); ok && strings.Contains(info, want) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("redis-server on %s (pid %d) not ready after %v (last error: %v); log:\n%s",
				s.Addr(), pid, readyTimeout, err, s.logSince(logFrom))
		}
		time.Sleep(pollInterval)
	}
}

func (s *Server) logSince(off int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

// reapLocked reports whether the process has exited, reaping it if so. It
// uses wait4(WNOHANG) on the pid; the pid cannot be reused before this reap,
// so signalling s.proc while it is non-nil is safe.
func (s *Server) reapLocked() bool {
	if s.proc == nil {
		return true
	}
	var ws syscall.WaitStatus
	for {
		wpid, err := syscall.Wait4(s.proc.Pid, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err == nil && wpid == 0 {
			return false
		}
		switch {
		case err != nil:
			s.last = "wait: " + err.Error()
		case ws.Signaled():
			s.last = "killed by " + ws.Signal().String()
		default:
			s.last = "exit status " + strconv.Itoa(ws.ExitStatus())
		}
		// Release frees the pidfd os.StartProcess may hold; Wait would have.
		_ = s.proc.Release()
		s.proc = nil
		return true
	}
}

// waitExitLocked polls until the process is reaped or d passes.
func (s *Server) waitExitLocked(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !s.reapLocked() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

func (s *Server) signalLocked(sig syscall.Signal) error {
	if s.reapLocked() {
		return fmt.Errorf("redistest: %v to redis-server on %s: not running (%s)", sig, s.Addr(), s.last)
	}
	return syscall.Kill(s.proc.Pid, sig)
}

func (s *Server) killLocked() {
	if s.reapLocked() {
		return
	}
	_ = syscall.Kill(s.proc.Pid, syscall.SIGKILL)
	if !s.waitExitLocked(reapTimeout) {
		s.t.Errorf("redistest: redis-server on %s (pid %d) survived SIGKILL for %v", s.Addr(), s.proc.Pid, reapTimeout)
	}
}

// shutdown is the t.Cleanup: SIGTERM (plus SIGCONT, in case the test left
// the server paused, since a stopped process does not act on SIGTERM), then
// SIGKILL after termGrace.
func (s *Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reapLocked() {
		_ = syscall.Kill(s.proc.Pid, syscall.SIGTERM)
		_ = syscall.Kill(s.proc.Pid, syscall.SIGCONT)
		if !s.waitExitLocked(termGrace) {
			s.killLocked()
		}
	}
	if s.t.Failed() {
		s.t.Logf("redistest: redis-server %s log tail:\n%s", s.Addr(), tail(s.logSince(0), 20))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// URL is "redis://127.0.0.1:port/0".
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Pid is the current process's id, or 0 when it is not running (killed,
// crashed or shut down).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reapLocked() {
		return 0
	}
	return s.proc.Pid
}

// Kill sends SIGKILL and waits until the process is gone: connections drop
// without a goodbye. Killing a server that is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

// Restart starts the server again on the same port with an empty dataset,
// killing it first if it is still running, and waits until it is ready. A
// cluster node keeps its nodes.conf, so it rejoins with its node ID and
// slots (but no keys). It retries for a while if the port is briefly taken.
// Call it from the test goroutine: it fails the test with t.Fatal.
func (s *Server) Restart() {
	s.t.Helper()
	s.restart(false)
}

// RestartFromSnapshot is Restart that keeps the RDB snapshot the server
// wrote last (SAVE, BGSAVE or SHUTDOWN SAVE), so the dataset comes back as
// it was when the snapshot was taken.
func (s *Server) RestartFromSnapshot() {
	s.t.Helper()
	s.restart(true)
}

func (s *Server) restart(keepSnapshot bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
	if !keepSnapshot {
		// --save "" means none of these exist; removing them anyway
		// guarantees the "empty dataset" promise even if a test passed its
		// own flags.
		_ = os.Remove(filepath.Join(s.dir, "dump.rdb"))
		_ = os.RemoveAll(filepath.Join(s.dir, "appendonlydir"))
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.launch()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			s.t.Fatalf("redistest: restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop pauses the server with SIGSTOP: connections stay open but nothing is
// answered, like a hung or partitioned server. Cleanup resumes it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.signalLocked(syscall.SIGSTOP); err != nil {
		s.t.Error(err)
	}
}

// Cont resumes a server paused by Stop.
func (s *Server) Cont() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.signalLocked(syscall.SIGCONT); err != nil {
		s.t.Error(err)
	}
}

// Do runs one command on a fresh connection (so it never disturbs the
// connections under test and works from any goroutine) and returns the
// reply as text: arrays one element per line, like redis-cli --raw. An error
// reply is returned as a ReplyError, a nil reply as ErrNil. It gives up
// after 30 s; use DoContext for a shorter bound, e.g. on a Stopped server.
func (s *Server) Do(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), doTimeout)
	defer cancel()
	return s.DoContext(ctx, args...)
}

// DoContext is Do bounded by ctx.
func (s *Server) DoContext(ctx context.Context, args ...string) (string, error) {
	v, err := do(ctx, s.Addr(), args...)
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ErrNil
	}
	var b strings.Builder
	flatten(&b, v)
	return b.String(), nil
}
