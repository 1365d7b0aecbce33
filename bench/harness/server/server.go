// Package server runs a server under test as a child process: each design
// gets its own process, so its RSS, threads, fds and CPU time in /proc are
// its own and nothing of the load generator's. It picks free loopback
// ports, waits until the server answers and stops it with SIGTERM (SIGKILL
// after a grace period).
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/internal/freeport"
)

// Spec describes how to start one server.
type Spec struct {
	// Name labels the process in errors ("wsgate", "naive", "floor").
	Name string
	// Bin is the executable; Args its arguments. The harness appends
	// ListenArgs' result, by default "--listen ADDR" and, with Debug,
	// "--debug-listen ADDR".
	Bin  string
	Args []string
	// ListenArgs, when set, says how the server is told its addresses
	// (debug is "" without Debug): a server with flags of its own.
	ListenArgs func(listen, debug string) []string
	// Debug gives the server a debug listener (pprof + /metrics); the
	// server is ready when /metrics answers.
	Debug bool
	// Listen, when set, is the --listen address instead of a free port (a
	// server restarted where its clients will look for it).
	Listen string
	// DebugListen, when set with Debug, is the --debug-listen address
	// instead of a free port (a load balancer health-checks it there).
	DebugListen string
	// Control connects the child's stdin and stdout to the harness; the
	// server is ready when it prints its first stdout line (the floor:
	// a probe connection would count as one of its clients).
	Control bool
	// NoListen starts a Control process that is not a server at all (a
	// load client): no --listen argument, no port.
	NoListen bool
	// Env is added to the harness's environment (e.g. GOMAXPROCS=1).
	Env []string
}

// Process is a running server.
type Process struct {
	Name      string
	Addr      string // the --listen address
	DebugAddr string // the --debug-listen address ("" without Debug)
	// FirstLine is the first stdout line of a Control server.
	FirstLine string
	// Stdin and Stdout are the control pipes of a Control server.
	Stdin  io.WriteCloser
	Stdout *bufio.Reader

	cmd     *exec.Cmd
	logs    *tail
	reaping bool          // reap runs (set before it starts, by Start's goroutine)
	exited  chan struct{} // closed when the process has been reaped
	err     error         // Wait's result, valid after exited
}

// ReadyTimeout bounds how long a server may take to answer after start.
const ReadyTimeout = 15 * time.Second

// stopGrace is how long a server may take to exit after SIGTERM.
const stopGrace = 20 * time.Second

// Start starts the server and waits until it is ready.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	var err error
	addr := spec.Listen
	if addr == "" && !spec.NoListen {
		if addr, err = FreePort(); err != nil {
			return nil, err
		}
	}
	p := &Process{Name: spec.Name, Addr: addr, logs: newTail(64 << 10), exited: make(chan struct{})}
	if spec.Debug {
		p.DebugAddr = spec.DebugListen
		if p.DebugAddr == "" {
			if p.DebugAddr, err = FreePort(); err != nil {
				return nil, err
			}
		}
	}
	listenArgs := spec.ListenArgs
	if listenArgs == nil {
		listenArgs = defaultListenArgs
	}
	args := append([]string(nil), spec.Args...)
	if !spec.NoListen {
		args = append(args, listenArgs(addr, p.DebugAddr)...)
	}
	cmd := exec.Command(spec.Bin, args...)
	if len(spec.Env) > 0 {
		cmd.Env = append(os.Environ(), spec.Env...)
	}
	cmd.Stderr = p.logs
	// Pdeathsig: a server must not outlive a killed wsbench and keep its
	// ports and thousands of sockets.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if spec.Control {
		if p.Stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		p.Stdout = bufio.NewReader(out)
	} else {
		cmd.Stdout = p.logs
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p.cmd = cmd
	if !spec.Control {
		p.startReaper()
	}
	if err := p.waitReady(ctx, spec); err != nil {
		_ = p.Kill()
		return nil, err
	}
	return p, nil
}

// defaultListenArgs are wsgate's and wsbench's flags.
func defaultListenArgs(listen, debug string) []string {
	args := []string{"--listen", listen}
	if debug != "" {
		args = append(args, "--debug-listen", debug)
	}
	return args
}

// startReaper waits for the process in the background. For a Control
// server it starts only after the first line was read: exec.Cmd.Wait
// closes the stdout pipe, which must not happen under a pending read.
func (p *Process) startReaper() {
	p.reaping = true
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
}

func (p *Process) waitReady(ctx context.Context, spec Spec) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	if spec.Control {
		line := make(chan error, 1)
		go func() {
			s, err := p.Stdout.ReadString('\n')
			p.FirstLine = s
			line <- err
		}()
		select {
		case err := <-line:
			if err != nil {
				return fmt.Errorf("%s exited before it was ready: %w; stderr:\n%s", p.Name, err, p.Logs())
			}
			p.startReaper()
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v; stderr:\n%s", p.Name, ReadyTimeout, p.Logs())
		}
	}
	sc := scrape.New(p.DebugAddr)
	for {
		err := p.probe(ctx, spec, sc)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v); output:\n%s", p.Name, p.err, p.Logs())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %v; output:\n%s", p.Name, ReadyTimeout, err, p.Logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *Process) probe(ctx context.Context, spec Spec, sc *scrape.Client) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", p.Addr)
	if err != nil {
		return err
	}
	// Reset, not close: a probe must not leave a TIME_WAIT socket on the
	// server's port for a minute.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
	if spec.Debug {
		return sc.Ready(ctx)
	}
	return nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended (a crash mid-run).
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// ExitError describes how the process ended; nil while it runs.
func (p *Process) ExitError() error {
	if !p.Exited() {
		return nil
	}
	if p.err == nil {
		return fmt.Errorf("%s exited with status 0", p.Name)
	}
	return fmt.Errorf("%s: %w", p.Name, p.err)
}

// Logs returns the tail of the server's output.
func (p *Process) Logs() string { return p.logs.String() }

// Stop asks the server to exit — a Control server by closing its stdin,
// others with SIGTERM (and a Control server that ignores EOF, too) — and
// kills it if it is still there after a grace period. A non-zero exit is
// reported; death by the SIGTERM we sent is not.
func (p *Process) Stop() error {
	if p.Stdin != nil {
		_ = p.Stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(stopGrace / 4):
		}
	}
	if p.Exited() {
		return p.exitErr()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.exitErr()
	case <-time.After(stopGrace):
		_ = p.Kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed; output:\n%s", p.Name, stopGrace, p.Logs())
	}
}

func (p *Process) exitErr() error {
	if p.err != nil {
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
				return nil
			}
		}
		return fmt.Errorf("%s: %w; output:\n%s", p.Name, p.err, p.Logs())
	}
	return nil
}

// Kill ends the process at once and waits for it.
func (p *Process) Kill() error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	_ = p.cmd.Process.Kill()
	if !p.reaping {
		p.startReaper()
	}
	<-p.exited
	return nil
}

// FreePort returns a loopback address with a port that was free a moment
// ago, for a server that binds it right after (see freeport.Addr).
func FreePort() (string, error) { return freeport.Addr() }

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
