package million

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/harness/progress"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/sysctl"
)

// Config describes a run. Zero values take the defaults noted.
type Config struct {
	// Conns is the target (default 1,000,000).
	Conns int
	// Designs run in order: results.Wsgate and/or results.Naive. wsgate
	// is ramped, held, pinged and broadcast to; naive is ramped until it
	// reaches Conns or runs out of memory or time, then measured.
	Designs []string
	// WsgateBin is the wsgate executable; Self is wsbench, which runs the
	// naive servers ("wsbench naive") and load clients ("wsbench
	// million-client").
	WsgateBin, Self string
	// RedisURL is the Redis every server shares ("": a private
	// redis-server on a free port, stopped at the end).
	RedisURL string

	PingInterval time.Duration // default 25 s
	PongTimeout  time.Duration // wsgate's --pong-timeout (default 10 s)
	// Heartbeat is wsgate's --heartbeat: "ping" (default) or "tcp". The
	// naive server always pings.
	Heartbeat string
	// Hold is the idle phase (default: 60 s, and at least two ping
	// intervals so that every connection is pinged in it; an explicit
	// shorter hold is kept, and the report shows how many pings it saw).
	Hold time.Duration
	// Burst is how many messages the burst broadcast publishes (default 5).
	Burst int
	// Channel every connection subscribes to (default "all").
	Channel string

	// FDCap is every process's open-file limit (default: this process's
	// RLIMIT_NOFILE hard limit). PerServer is the planned mean per server
	// (0: see PlanConfig).
	FDCap     int
	PerServer int
	// DialsInFlight bounds concurrent dials over all load clients
	// (default 1,000); DialRate the connects started per second over all
	// of them (default 3,000; negative: no pacing). A 2-core host shared
	// with other work keeps up with about that; faster, handshakes and
	// subscribes time out while the CPU is short.
	DialsInFlight int
	DialRate      float64
	// MaxFailures ends a ramp once this many dials have failed or
	// connections were closed by a server (default 1 % of Conns, at
	// least 100): the host no longer keeps up, and going on only burns
	// the time the rest of the run needs.
	MaxFailures int
	// GOMAXPROCS is given to every child process (default 1: ~100
	// processes share the cores; negative keeps Go's default, one per
	// core).
	GOMAXPROCS int
	// ClientNice is the load clients' nice value (default 5; negative:
	// 0): the load generator, which would run on other machines in
	// production, yields the CPU to the servers and Redis under test.
	ClientNice int
	// RedisNice is the nice value given to the redis-server the run starts
	// (default -10; positive: 0). Every server waits on it: starved of
	// CPU behind ~100 busy processes, its replies come late, the servers'
	// 3-s pub/sub probes fail, they reconnect and every subscribe waiting
	// for its channel fails (measured: 362 probes missed in a 50-s ramp at
	// nice 0, none at -10).
	RedisNice        int
	HandshakeTimeout time.Duration // default 10 s
	// Redials is how often a load client starts a failed dial again
	// (0: never); counted apart from failed dials.
	Redials int
	// RampTimeout ends a ramp that has not reached Conns (default 5 min);
	// NaiveRampTimeout the naive server's (default 3 min: it comes last
	// and the whole run should stay under a quarter of an hour).
	RampTimeout, NaiveRampTimeout time.Duration
	// BaselineWindow is how long the servers' CPU is measured before any
	// connection (default 10 s).
	BaselineWindow time.Duration

	// MemFloor: below this much MemAvailable the run aborts whatever it is
	// doing (default 4 GiB). NaiveMemFloor ends the naive server's ramp
	// earlier (default 6 GiB): its memory keeps growing after the dials
	// stop, while its goroutines settle and the garbage collector catches
	// up.
	MemFloor, NaiveMemFloor int64

	// SysRoot is the host tree the sysctls are applied under and `wsgate
	// doctor` inspects ("/": this host; tests use a fake tree). With
	// ApplySysctls false the run changes no sysctl (the doctor still runs).
	SysRoot      string
	ApplySysctls bool
	// UndoPath keeps the old sysctl values while they are changed
	// (default /tmp/wsbench-million.sysctl-undo.conf).
	UndoPath string

	// LogDir, when set, receives every process's output tail at the end of
	// each design (<design>-server-<i>.log, <design>-client-<i>.log).
	LogDir string

	Proc procfs.Root // default procfs.Proc
	Log  *slog.Logger
	Bar  *progress.Bar
}

// Defaults.
const (
	DefaultConns            = 1_000_000
	DefaultHold             = 60 * time.Second
	DefaultBurst            = 3
	DefaultChannel          = "all"
	DefaultDialsInFlight    = 1000
	DefaultDialRate         = 3000
	DefaultRampTimeout      = 5 * time.Minute
	DefaultNaiveRampTimeout = 3 * time.Minute
	DefaultMemFloor         = 4 << 30
	DefaultNaiveMemFloor    = 6 << 30
	DefaultUndoPath         = "/tmp/wsbench-million.sysctl-undo.conf"
)

func (c Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.Conns, DefaultConns)
	set(&c.Burst, DefaultBurst)
	set(&c.DialsInFlight, DefaultDialsInFlight)
	set(&c.MaxFailures, max(100, c.Conns/100))
	set(&c.GOMAXPROCS, 1)
	set(&c.ClientNice, 5)
	set(&c.RedisNice, -10)
	if c.DialRate == 0 {
		c.DialRate = DefaultDialRate
	}
	setD(&c.PingInterval, 25*time.Second)
	setD(&c.PongTimeout, 10*time.Second)
	if c.Heartbeat == "" {
		c.Heartbeat = "ping"
	}
	if c.Hold == 0 {
		c.Hold = max(DefaultHold, 2*c.PingInterval+5*time.Second)
	}
	setD(&c.HandshakeTimeout, 10*time.Second)
	setD(&c.RampTimeout, DefaultRampTimeout)
	setD(&c.NaiveRampTimeout, DefaultNaiveRampTimeout)
	setD(&c.BaselineWindow, 10*time.Second)
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.MemFloor == 0 {
		c.MemFloor = DefaultMemFloor
	}
	if c.NaiveMemFloor == 0 {
		c.NaiveMemFloor = DefaultNaiveMemFloor
	}
	if c.SysRoot == "" {
		c.SysRoot = "/"
	}
	if c.UndoPath == "" {
		c.UndoPath = DefaultUndoPath
	}
	if c.Proc == "" {
		c.Proc = procfs.Proc
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Conns < 1:
		return errors.New("connections must be positive")
	case c.Burst < 1 || 1+c.Burst > MaxMessages:
		return fmt.Errorf("burst must be 1 to %d", MaxMessages-1)
	case c.WsgateBin == "" || c.Self == "":
		return errors.New("need the wsgate and wsbench executables")
	case c.MemFloor <= 0 || c.NaiveMemFloor < c.MemFloor:
		return errors.New("memory floors must be positive, the naive one at least the run's")
	}
	for _, d := range c.Designs {
		if d != results.Wsgate && d != results.Naive {
			return fmt.Errorf("design %q: want wsgate or naive", d)
		}
	}
	return nil
}

// runner is one Run.
type runner struct {
	cfg   Config
	run   *results.Run
	host  *results.Host
	probe *probe
	guard *guard
	redis *server.Redis // nil with Config.RedisURL
	url   string
	ports []int // every listen port used, for the cleanup check
}

// Run prepares the host, runs every design and restores the host. Numbers
// go into run (run.Host and each design's Million); what went wrong into
// run.Problems. The error is for a run that could not happen at all (a
// host that is not ready, a process that would not start) or could not
// restore the host.
func Run(ctx context.Context, cfg Config, run *results.Run) (err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("million: %w", err)
	}
	r := &runner{cfg: cfg, run: run, host: &results.Host{MemFloorBytes: cfg.MemFloor}}
	run.Host = r.host
	if cfg.ApplySysctls {
		restore, err := r.prepare()
		if err != nil {
			return err
		}
		defer func() {
			if rerr := restore(); rerr != nil {
				r.host.RestoreError = rerr.Error()
				err = errors.Join(err, fmt.Errorf("restore sysctls: %w (values kept in %s: wsbench million --restore)", rerr, cfg.UndoPath))
			} else {
				r.host.Restored = true
			}
		}()
	}
	cfg.Bar.Phase("million: wsgate doctor", 0)
	plan, _, err := r.plan()
	if err != nil {
		return err
	}
	d, ok, err := RunDoctor(ctx, cfg.WsgateBin, cfg.SysRoot, cfg.Conns, plan.Servers)
	r.host.Doctor = &d
	if err != nil || !ok {
		return fmt.Errorf("million: %w", err)
	}
	cfg.Log.Info("wsgate doctor", "verdict", d.Verdict)

	if r.probe, err = newProbe(cfg.Proc); err != nil {
		return fmt.Errorf("million: %w", err)
	}
	r.host.MemAvailableStart, _ = cfg.Proc.ReadMemAvailable()
	if st, err := cfg.Proc.ReadSockstat(); err == nil {
		r.host.TCPInUseBefore, r.host.TimeWaitBefore = st.InUse, st.TimeWait
	}
	gctx, cancelGuard := context.WithCancelCause(ctx)
	r.guard = &guard{proc: cfg.Proc, cancel: cancelGuard}
	r.guard.floor.Store(cfg.MemFloor)
	guardDone := make(chan struct{})
	go func() {
		defer close(guardDone)
		r.guard.watch(gctx)
	}()
	defer func() {
		cancelGuard(nil)
		<-guardDone
		r.host.MemAvailableMinBytes = r.guard.min.Load()
		r.host.LoadAvgMax = float64(r.guard.load.Load()) / 100
		r.host.MemAvailableEnd, _ = cfg.Proc.ReadMemAvailable()
		r.cleanupCheck()
	}()

	if err := r.startRedis(ctx); err != nil {
		return err
	}
	defer r.stopRedis()
	for _, design := range cfg.Designs {
		if gctx.Err() != nil {
			r.run.Problem("%s: not run: %v", design, context.Cause(gctx))
			continue
		}
		if err := r.runDesign(gctx, design); err != nil {
			return err
		}
	}
	return nil
}

// prepare restores what an interrupted run left, applies the profiles
// and returns the restore.
func (r *runner) prepare() (func() error, error) {
	left, err := RestoreLeftover(r.cfg.SysRoot, r.cfg.UndoPath)
	r.host.LeftoverRestored = left
	if err != nil {
		return nil, fmt.Errorf("million: an earlier run's sysctls: %w", err)
	}
	if len(left) > 0 {
		r.cfg.Log.Warn("restored the sysctls an interrupted run had changed", "count", len(left), "from", r.cfg.UndoPath)
	}
	prep, err := prepareHost(r.cfg.SysRoot, r.cfg.UndoPath)
	if err != nil {
		return nil, fmt.Errorf("million: prepare the host: %w", err)
	}
	r.host.Sysctls = sysctlChanges(prep.applied.Changes)
	for _, s := range prep.applied.Skipped {
		r.host.SysctlSkipped = append(r.host.SysctlSkipped, results.SysctlChange{Key: s.Key, Old: s.Reason})
	}
	return prep.restore, nil
}

func (r *runner) startRedis(ctx context.Context) error {
	if r.cfg.RedisURL != "" {
		r.url = r.cfg.RedisURL
		return nil
	}
	r.cfg.Bar.Phase("million: starting redis-server", 0)
	// Clients of a million connections' worth of servers: lift the
	// default 10,000 (Redis lowers it to its own fd limit anyway).
	rs, err := server.StartRedis(ctx, "--maxclients", "19000")
	if err != nil {
		return fmt.Errorf("million: %w", err)
	}
	r.redis, r.url = rs, rs.URL
	if nice := min(r.cfg.RedisNice, 0); nice != 0 {
		// Its main thread (tid = pid) runs the event loop.
		if err := unix.Setpriority(unix.PRIO_PROCESS, rs.Pid(), nice); err != nil {
			r.run.Problem("redis-server: nice %d: %v", nice, err)
		}
	}
	return nil
}

func (r *runner) stopRedis() {
	if r.redis == nil {
		return
	}
	if err := r.redis.Stop(); err != nil {
		r.run.Problem("redis-server: %v", err)
	}
}

func (r *runner) redisPids() []int {
	if r.redis == nil {
		return nil
	}
	return []int{r.redis.Pid()}
}

// cleanupCheck records what the run left: sockets on its ports, live
// child processes (counted by runDesign), sockstat.
func (r *runner) cleanupCheck() {
	if n, err := r.cfg.Proc.CountTCPSockets(r.ports...); err == nil {
		r.host.SocketsLeft, r.host.TimeWaitLeft = n.Other+n.TimeWait, n.TimeWait
		if n.Other > 0 {
			r.run.Problem("%d sockets (not in TIME_WAIT) left on ports %v after teardown", n.Other, r.ports)
		}
	}
	if st, err := r.cfg.Proc.ReadSockstat(); err == nil {
		r.host.TCPInUseAfter, r.host.TimeWaitAfter = st.InUse, st.TimeWait
	}
	if r.host.ProcessesLeft > 0 {
		r.run.Problem("%d child processes still running after teardown", r.host.ProcessesLeft)
	}
}

// localPorts is the size of the host's ephemeral port range.
func localPorts(root string) (int, error) {
	v, err := sysctl.ReadSysctl(root, "net.ipv4.ip_local_port_range")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(v)
	if len(f) != 2 {
		return 0, fmt.Errorf("ip_local_port_range %q", v)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil || hi < lo {
		return 0, fmt.Errorf("ip_local_port_range %q", v)
	}
	return hi - lo + 1, nil
}

// plan lays the run out over the host's ephemeral port range, which it
// also returns. The real host's range: the kernel picks ports, whatever a
// fake sysctl tree says.
func (r *runner) plan() (Plan, int, error) {
	ports, err := localPorts("/")
	if err != nil {
		return Plan{}, 0, fmt.Errorf("million: %w", err)
	}
	plan, err := NewPlan(PlanConfig{Conns: r.cfg.Conns, FDCap: r.cfg.FDCap, PerServer: r.cfg.PerServer, LocalPorts: ports})
	if err != nil {
		return Plan{}, 0, fmt.Errorf("million: %w", err)
	}
	return plan, ports, nil
}

// runDesign ramps one design and measures it; the error is for a design
// that could not start.
func (r *runner) runDesign(ctx context.Context, design string) error {
	cfg := r.cfg
	m := &results.Million{Target: cfg.Conns}
	r.run.Design(design).Million = m
	plan, ports, err := r.plan()
	if err != nil {
		return err
	}
	m.Layout = results.MillionLayout{FDCap: cfg.FDCap, Servers: plan.Servers, ServerCap: plan.ServerCap,
		MeanPerServer: plan.MeanPerServer, Clients: len(plan.Clients), PerClient: plan.MaxPerClient(),
		Sources: plan.Sources, LocalPorts: ports, GOMAXPROCS: max(cfg.GOMAXPROCS, 0), DialRate: max(cfg.DialRate, 0)}

	addr, err := server.FreePort()
	if err != nil {
		return err
	}
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	r.ports = append(r.ports, port)
	f := &fleet{design: design, addr: addr}
	defer func() { r.host.ProcessesLeft += f.alive() }()

	cfg.Bar.Phase(fmt.Sprintf("million: starting %d %s servers", plan.Servers, design), 0)
	if err := f.startServers(ctx, plan.Servers, r.serverSpec(design, addr, plan, f)); err != nil {
		return fmt.Errorf("million: %w", err)
	}
	serverPids, _ := f.pids()
	base := memBase{serverRSS: r.probe.rss(serverPids)}
	base.serverHeap, _ = heapAll(ctx, f.scrapes)
	base.gc = gcAll(ctx, f.scrapes) // after the forced GC of the heap read
	r.baselineCPU(ctx, f, m)

	cfg.Bar.Phase(fmt.Sprintf("million: starting %d load clients", len(plan.Clients)), 0)
	perClient := max(1, cfg.DialsInFlight/len(plan.Clients))
	rate := max(cfg.DialRate, 0) / float64(len(plan.Clients))
	args := clientArgs(addr, cfg.Channel, perClient, rate, cfg.HandshakeTimeout, cfg.Redials)
	if err := f.startClients(ctx, cfg.Self, plan.Clients, args, r.env(), max(cfg.ClientNice, 0)); err != nil {
		_ = f.stop(time.Second)
		return fmt.Errorf("million: %w", err)
	}
	_, clientPids := f.pids()
	base.clientRSS = r.probe.rss(clientPids)
	base.memAvailable, _ = cfg.Proc.ReadMemAvailable()
	r.probe.rebase()

	defer r.teardown(f, m)
	floor, timeout := cfg.MemFloor, cfg.RampTimeout
	if design == results.Naive {
		floor, timeout = cfg.NaiveMemFloor, cfg.NaiveRampTimeout
	}
	slope, fatal := r.ramp(ctx, f, m, floor, timeout)
	r.checkRamp(design, m)
	// wsgate is held and broadcast to at whatever count its ramp reached,
	// unless memory ran short or a process died: a ramp that ran out of
	// time or CPU still says what that many connections cost.
	full := design == results.Wsgate && !fatal && m.Reached > 0
	if full {
		r.hold(ctx, f, m)
	}
	r.memory(ctx, f, m, base, slope)
	if full && ctx.Err() == nil && m.Hold != nil && m.Hold.Conns > 0 {
		r.broadcasts(ctx, f, m)
	}
	return nil
}

// env is what every child process gets on top of this one's environment.
func (r *runner) env() []string {
	if r.cfg.GOMAXPROCS < 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(r.cfg.GOMAXPROCS)}
}

// baselineCPU measures the servers' CPU before they hold any connection.
func (r *runner) baselineCPU(ctx context.Context, f *fleet, m *results.Million) {
	r.cfg.Bar.Phase(fmt.Sprintf("million: %s servers idle with no connection", f.design), 0)
	pids, _ := f.pids()
	c0, h0, t0 := r.probe.cpu(pids), r.probe.hostCPU(), time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(r.cfg.BaselineWindow):
	}
	m.BaselineWindowS = time.Since(t0).Seconds()
	m.BaselinePctCore = 100 * (r.probe.cpu(pids) - c0).Seconds() / m.BaselineWindowS
	m.BaselineHostPctCore = 100 * (r.probe.hostCPU().Busy - h0.Busy).Seconds() / m.BaselineWindowS
}

// serverSpec returns the start spec of server i of design.
func (r *runner) serverSpec(design, addr string, plan Plan, f *fleet) func(int) server.Spec {
	cfg := r.cfg
	ping := cfg.PingInterval.String()
	if design == results.Naive {
		return func(i int) server.Spec {
			// The naive server drops a connection whose pong is later than
			// --pong-wait after its last one: it must exceed the interval.
			args := []string{"naive", "--reuse-port", "--ping-interval", ping,
				"--pong-wait", (cfg.PingInterval + cfg.PongTimeout).String(), "--broker", "redis", "--redis-url", r.url}
			return server.Spec{Name: fmt.Sprintf("naive-%d", i), Bin: cfg.Self, Args: args, Debug: true, Listen: addr, Env: r.env()}
		}
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	f.apiKey = hex.EncodeToString(key[:])
	api, err := server.FreePort()
	if err == nil {
		f.apiAddr = api
	}
	return func(i int) server.Spec {
		args := []string{"serve", "--reuse-port", "--ping-interval", ping, "--pong-timeout", cfg.PongTimeout.String(), "--heartbeat", cfg.Heartbeat,
			"--log-level", "warn", "--broker", "redis", "--redis-url", r.url, "--max-conns", strconv.Itoa(plan.ServerCap)}
		if i == 0 && f.apiAddr != "" {
			args = append(args, "--api-listen", f.apiAddr, "--api-key", f.apiKey)
		}
		return server.Spec{Name: fmt.Sprintf("wsgate-%d", i), Bin: cfg.WsgateBin, Args: args, Debug: true, Listen: addr, Env: r.env()}
	}
}

// checkRamp records the ramp's problems.
func (r *runner) checkRamp(design string, m *results.Million) {
	if m.FailedDials > 0 {
		r.run.Problem("%s: %d dials failed (first: %s)", design, m.FailedDials, m.FirstDialError)
	}
	if m.SubscribeErrors > 0 {
		r.run.Problem("%s: %d subscribes failed (first: %s)", design, m.SubscribeErrors, m.FirstSubscribeError)
	}
	if m.StopReason != "" && design == results.Wsgate {
		r.run.Problem("%s: ramp stopped at %d of %d connections: %s", design, m.Reached, m.Target, m.StopReason)
	}
}

// finalReportWait bounds the wait for every load client's final report.
// A client resets its ~20,000 connections first, and with a hundred
// processes runnable on two cores that took one client over a minute in a
// million run; waiting costs nothing when they are quick.
const finalReportWait = 5 * time.Minute

// teardown resets every connection, stops every process and records
// how the connections ended.
func (r *runner) teardown(f *fleet, m *results.Million) {
	r.cfg.Bar.Phase(fmt.Sprintf("million: %s teardown", f.design), 0)
	m.CountersAtEnd = f.counters(context.Background())
	start := time.Now()
	final, err := f.closeClients(finalReportWait)
	if err != nil {
		r.run.Problem("%s: %v", f.design, err)
	}
	m.ClosedByServer, m.Closes = final.Closed, final.ClosesByName()
	if m.ClosedByServer > 0 {
		r.run.Problem("%s: %d connections closed by the server before teardown (codes %v)", f.design, m.ClosedByServer, m.Closes)
	}
	if err := f.stop(30 * time.Second); err != nil {
		r.run.Problem("%s: stop: %v", f.design, err)
	}
	m.TeardownS = time.Since(start).Seconds()
	if r.cfg.LogDir != "" {
		if err := f.writeLogs(r.cfg.LogDir); err != nil {
			r.run.Problem("%s: logs: %v", f.design, err)
		}
	}
}
