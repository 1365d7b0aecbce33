package million

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
)

// fleet is one design's processes: the servers sharing addr and the load
// clients.
type fleet struct {
	design  string
	addr    string // every server's --listen (SO_REUSEPORT)
	servers []*server.Process
	scrapes []*scrape.Client
	clients []*clientHandle
	// The HTTP API of the first server (wsgate only): where broadcasts are
	// published.
	apiAddr, apiKey string
}

// startAll runs start(i) for i in [0, n) with at most parallel at once and
// returns the results in order; on any error it stops the ones started.
func startAll[T any](n, parallel int, start func(i int) (T, error), stop func(T)) ([]T, error) {
	out := make([]T, n)
	ok := make([]bool, n)
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = start(i)
			ok[i] = errs[i] == nil
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, v := range out {
			if ok[i] {
				stop(v)
			}
		}
		return nil, err
	}
	return out, nil
}

// startParallel is how many processes start at once: each start waits for
// the process to answer, and 2 cores gain nothing from more.
const startParallel = 8

// startServers starts n servers from spec(i).
func (f *fleet) startServers(ctx context.Context, n int, spec func(i int) server.Spec) error {
	procs, err := startAll(n, startParallel, func(i int) (*server.Process, error) {
		return server.Start(ctx, spec(i))
	}, func(p *server.Process) { _ = p.Kill() })
	if err != nil {
		return fmt.Errorf("start %s servers: %w", f.design, err)
	}
	f.servers = procs
	for _, p := range procs {
		f.scrapes = append(f.scrapes, scrape.New(p.DebugAddr))
	}
	return nil
}

// clientHandle is one load-client process and its latest report.
type clientHandle struct {
	proc *server.Process

	mu     sync.Mutex
	last   *Report
	final  *Report
	ended  chan struct{} // the report reader is done (final line or EOF)
	errMsg string        // an unreadable line, if any
}

// startClients starts one load-client process per share.
func (f *fleet) startClients(ctx context.Context, self string, shares []ClientShare, args func(ClientShare) []string, env []string, nice int) error {
	bin, prefix := self, []string(nil)
	if nice != 0 {
		// nice(1) execs wsbench in place (same pid) with every thread at
		// the lower priority; setpriority(2) from inside a Go process
		// would reach only the calling thread.
		if p, err := exec.LookPath("nice"); err == nil {
			bin, prefix = p, []string{"-n", strconv.Itoa(nice), self}
		}
	}
	handles, err := startAll(len(shares), startParallel, func(i int) (*clientHandle, error) {
		p, err := server.Start(ctx, server.Spec{Name: fmt.Sprintf("%s-client-%d", f.design, i), Bin: bin,
			Args: append(slices.Clone(prefix), args(shares[i])...), Control: true, NoListen: true, Env: env})
		if err != nil {
			return nil, err
		}
		h := &clientHandle{proc: p, ended: make(chan struct{})}
		var r Report
		if err := json.Unmarshal([]byte(p.FirstLine), &r); err != nil || r.Event != EventReady {
			_ = p.Kill()
			return nil, fmt.Errorf("%s: first line %q", p.Name, p.FirstLine)
		}
		h.last = &r
		go h.read()
		return h, nil
	}, func(h *clientHandle) { _ = h.proc.Kill() })
	if err != nil {
		return fmt.Errorf("start %s load clients: %w", f.design, err)
	}
	f.clients = handles
	return nil
}

// read keeps the latest report until the final one or EOF.
func (h *clientHandle) read() {
	defer close(h.ended)
	sc := bufio.NewScanner(h.proc.Stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r Report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			h.mu.Lock()
			h.errMsg = fmt.Sprintf("%s: unreadable report: %v", h.proc.Name, err)
			h.mu.Unlock()
			continue
		}
		h.mu.Lock()
		h.last = &r
		if r.Event == EventFinal {
			h.final = &r
		}
		h.mu.Unlock()
		if r.Event == EventFinal {
			return
		}
	}
}

// send writes one command line; a dead process is noticed elsewhere.
func (h *clientHandle) send(cmd string) {
	_, _ = fmt.Fprintln(h.proc.Stdin, cmd)
}

func (h *clientHandle) latest() *Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// broadcast sends cmd to every client.
func (f *fleet) broadcast(cmd string) {
	for _, c := range f.clients {
		c.send(cmd)
	}
}

// totals aggregates the latest reports.
func (f *fleet) totals() Totals {
	rs := make([]*Report, len(f.clients))
	for i, c := range f.clients {
		rs[i] = c.latest()
	}
	return Aggregate(rs)
}

// fresh waits (up to timeout) until every client has reported after
// mark, and returns the totals.
func (f *fleet) fresh(mark time.Time, timeout time.Duration) Totals {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		stale := false
		for _, c := range f.clients {
			if r := c.latest(); r == nil || r.TimeNs < mark.UnixNano() {
				stale = true
				break
			}
		}
		if !stale {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return f.totals()
}

// crashed names a process of the fleet that has exited, if any.
func (f *fleet) crashed() error {
	for _, p := range f.servers {
		if err := p.ExitError(); err != nil {
			return fmt.Errorf("%w; output:\n%s", err, p.Logs())
		}
	}
	for _, c := range f.clients {
		if err := c.proc.ExitError(); err != nil {
			return fmt.Errorf("%w; output:\n%s", err, c.proc.Logs())
		}
	}
	return nil
}

// pids returns the server and client process ids.
func (f *fleet) pids() (servers, clients []int) {
	for _, p := range f.servers {
		servers = append(servers, p.Pid())
	}
	for _, c := range f.clients {
		clients = append(clients, c.proc.Pid())
	}
	return servers, clients
}

// closeClients asks every client for its final report (resetting its
// connections) and waits up to timeout; it returns the final totals.
func (f *fleet) closeClients(timeout time.Duration) (Totals, error) {
	f.broadcast(CmdClose)
	deadline := time.After(timeout)
	var missing []string
	for _, c := range f.clients {
		select {
		case <-c.ended:
		case <-deadline:
		}
		c.mu.Lock()
		if c.final == nil {
			missing = append(missing, c.proc.Name)
		}
		c.mu.Unlock()
	}
	rs := make([]*Report, len(f.clients))
	for i, c := range f.clients {
		rs[i] = c.latest()
	}
	var err error
	if len(missing) > 0 {
		err = fmt.Errorf("no final report from %s", strings.Join(missing, ", "))
	}
	return Aggregate(rs), err
}

// stop ends every process: the clients first (they have reset their
// connections), then the servers once they have seen those go.
func (f *fleet) stop(drain time.Duration) error {
	var errs []error
	var mu sync.Mutex
	each := func(n int, stop func(i int) error) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := stop(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	each(len(f.clients), func(i int) error { return f.clients[i].proc.Stop() })
	each(len(f.servers), func(i int) error {
		waitConnsGone(f.scrapes[i], drain)
		return f.servers[i].Stop()
	})
	return errors.Join(errs...)
}

// waitConnsGone waits until the server reports no open connection (its
// shutdown would otherwise spend a drain window on sockets already gone).
func waitConnsGone(sc *scrape.Client, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for ctx.Err() == nil {
		m, err := sc.Metrics(ctx)
		if err != nil || m["wsgate_conns_open"] == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive counts the fleet's processes that have not exited.
func (f *fleet) alive() int {
	n := 0
	for _, p := range f.servers {
		if !p.Exited() {
			n++
		}
	}
	for _, c := range f.clients {
		if !c.proc.Exited() {
			n++
		}
	}
	return n
}

// serverConns returns each server's open connections (-1: unreadable).
func (f *fleet) serverConns(ctx context.Context) []int {
	out := make([]int, len(f.scrapes))
	var wg sync.WaitGroup
	for i, sc := range f.scrapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := sc.Metrics(ctx)
			if v, ok := m["wsgate_conns_open"]; err == nil && ok {
				out[i] = int(v)
			} else {
				out[i] = -1
			}
		}()
	}
	wg.Wait()
	return out
}

// clientArgs is the command line of a load-client process.
func clientArgs(addr, channel string, dialsInFlight int, dialRate float64, handshakeTimeout time.Duration, redials int) func(ClientShare) []string {
	return func(s ClientShare) []string {
		return []string{"million-client", "--addr", addr, "--conns", strconv.Itoa(s.Conns),
			"--sources", strings.Join(s.Sources, ","), "--channel", channel,
			"--dials-in-flight", strconv.Itoa(dialsInFlight), "--dial-rate", strconv.FormatFloat(dialRate, 'f', 1, 64),
			"--handshake-timeout", handshakeTimeout.String(), "--redials", strconv.Itoa(redials)}
	}
}

// Counters summed over the servers (see results.Million.CountersAtEnd).
var Counters = []string{
	"wsgate_conns_open", "wsgate_conns_upgraded_total", "wsgate_pong_timeouts_total",
	"wsgate_handshake_timeouts_total", "wsgate_handshakes_busy_total", "wsgate_handshakes_failed_total",
	"wsgate_conns_refused_total", "wsgate_accept_errors_total", "wsgate_slow_consumers_total",
	"wsgate_redis_deaf_total", "wsgate_redis_reconnects_total", "wsgate_redis_dropped_total",
	"wsgate_memory_trims_total", "wsgate_memory_trimmed_bytes_total",
}

// counters sums Counters over every server that answers.
func (f *fleet) counters(ctx context.Context) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := map[string]float64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sc := range f.scrapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := sc.Metrics(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, name := range Counters {
				if v, ok := m[name]; ok {
					out[name] += v
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// writeLogs writes every process's output tail into dir.
func (f *fleet) writeLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for i, p := range f.servers {
		errs = append(errs, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-server-%d.log", f.design, i)), []byte(p.Logs()), 0o644))
	}
	for i, c := range f.clients {
		errs = append(errs, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-client-%d.log", f.design, i)), []byte(c.proc.Logs()), 0o644))
	}
	return errors.Join(errs...)
}
