package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/wsgate/wsgate/bench/floor"
	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/wait"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// idleOpts are the idle scenario's own flags.
type idleOpts struct {
	sizes         intList
	cpuWindow     time.Duration
	dialsInFlight int
	settle        time.Duration
	compression   bool
	subscribe     string
	floor         bool
}

func (o *idleOpts) register(fs *flag.FlagSet) {
	o.sizes = intList{1000, 5000, 10000, 19000}
	fs.Var(&o.sizes, "conns", "connection counts to measure at, ascending (the slope is fitted over them)")
	fs.DurationVar(&o.cpuWindow, "cpu-window", 0, "how long idle CPU is measured at the largest count (0: one ping interval, at least 10s)")
	fs.IntVar(&o.dialsInFlight, "dials-in-flight", 500, "concurrent connects+handshakes while growing")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause after each growth step before measuring")
	fs.StringVar(&o.subscribe, "subscribe", "", "subscribe every connection to this channel once it is upgraded (as \"wsbench million\"'s are): what a subscribed connection costs at rest; empty: connections subscribe to nothing")
	fs.BoolVar(&o.floor, "floor", true, "also measure the heartbeat floor at the largest count: a bare epoll loop that pings as many sockets at the same interval and reads their pongs (bench/floor)")
	fs.BoolVar(&o.compression, "compression", false, "connections offer permessage-deflate (naive accepts it as gorilla's EnableCompression does): what negotiated compression costs at rest")
}

// idleCmd measures what idle connections cost each design.
func idleCmd(e env, args []string) int {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	var o idleOpts
	c.register(fs)
	c.registerHeartbeat(fs)
	o.register(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	b, err := newBench(e, "idle", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench idle:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	for _, d := range b.designs {
		b.runIdle(ctx, d, o)
	}
	if o.floor && ctx.Err() == nil {
		b.runIdleFloor(ctx, o)
		linkIdleFloor(b.run)
	}
	return b.finish()
}

// runIdle grows one server's idle connections step by step and measures
// it at each size, then its CPU while they sit idle with pings on.
func (b *bench) runIdle(ctx context.Context, design string, o idleOpts) {
	sizes := slices.Clone(o.sizes)
	slices.Sort(sizes)
	var extra []string
	if o.compression && design == results.Naive {
		extra = append(extra, "--compression")
	}
	p, err := b.startServer(ctx, design, extra...)
	if err != nil {
		return
	}
	defer b.stopServer(p)
	sc := scrape.New(p.DebugAddr)
	idle := &results.Idle{Channel: o.subscribe}

	b.bar.Phase(fmt.Sprintf("idle %s: baseline", design), 0)
	wait.Sleep(ctx, o.settle)
	base, err := b.measureIdle(ctx, p, sc, 0)
	if err != nil {
		b.run.Problem("idle %s: baseline: %v", design, err)
		return
	}
	idle.Points = append(idle.Points, base)

	var pools []*drive.Subscribers
	defer func() {
		for _, pl := range pools {
			_ = pl.Close()
		}
	}()
	held := 0
	for _, n := range sizes {
		if n <= held {
			continue
		}
		b.bar.Phase(fmt.Sprintf("idle %s: %d connections", design, n), n)
		pool, sum, err := b.grow(ctx, p, design, base.FDs, held, n, o)
		if err != nil {
			b.run.Problem("idle %s: dial to %d: %v", design, n, err)
			return
		}
		pools = append(pools, pool)
		if o.subscribe != "" {
			if err := pool.Subscribe(ctx, []string{o.subscribe}, 60*time.Second); err != nil {
				b.run.Problem("idle %s: subscribe at %d: %v", design, n, err)
				return
			}
			idle.Subscribed += pool.Subscribed()
		}
		if sum.Failed > 0 {
			b.run.Problem("idle %s: %d of %d dials failed growing to %d: %s", design, sum.Failed, sum.Conns, n, sum.FirstError)
		}
		if d := pool.Stats().Deflated; o.compression && d != uint64(sum.Connected) {
			b.run.Problem("idle %s: permessage-deflate negotiated on %d of %d connections", design, d, sum.Connected)
		}
		held += sum.Connected
		wait.Sleep(ctx, o.settle)
		pt, err := b.measureIdle(ctx, p, sc, held)
		if err != nil {
			b.run.Problem("idle %s: measure at %d: %v", design, held, err)
			return
		}
		pt.Dial = &sum
		idle.Points = append(idle.Points, pt)
		idle.ConnectRate = sum.ConnectRate
		idle.HandshakeMs = results.Percentiles{P50: sum.HandshakeP50Ms, P90: sum.HandshakeP90Ms, P99: sum.HandshakeP99Ms, Max: sum.HandshakeMaxMs}
		if ctx.Err() != nil {
			return
		}
	}
	b.finishIdle(ctx, p, design, idle, held, pools, o)
}

// finishIdle fits the slopes over the sizes measured, measures the CPU of
// the held connections at rest, and records what went wrong on the way.
func (b *bench) finishIdle(ctx context.Context, p *server.Process, design string, idle *results.Idle, held int, pools []*drive.Subscribers, o idleOpts) {
	if len(idle.Points) > 2 {
		if err := results.FitIdle(idle); err != nil {
			b.run.Problem("idle %s: %v", design, err)
		}
	} else {
		b.run.Problem("idle %s: fewer than two sizes measured: no slope", design)
	}
	b.run.Design(design).Idle = idle

	cpu, err := b.idleCPU(ctx, p, design, held, b.idleWindow(o), pools)
	if err != nil {
		b.run.Problem("idle %s: cpu: %v", design, err)
	} else {
		idle.IdleCPU = cpu
	}
	closed := 0
	for _, pl := range pools {
		closed += pl.Stats().Closed
	}
	if closed > 0 {
		b.run.Problem("idle %s: the server closed %d idle connections (pings unanswered?)", design, closed)
	}
	if p.Exited() {
		b.run.Problem("idle %s: %v", design, p.ExitError())
	}
}

// grow dials n-held more connections, showing progress from the server's
// fd count (the client pool reports only when done). A connection is
// idle once it is a client: upgraded, and connected where the protocol
// has a connect command (Centrifugo); runIdle subscribes it when asked.
func (b *bench) grow(ctx context.Context, p *server.Process, design string, baseFDs, held, n int, o idleOpts) (*drive.Subscribers, loadclient.Summary, error) {
	stop := b.watchFDs(p, baseFDs)
	pool, err := drive.DialSubscribersWith(ctx, dialect(design), p.Addr, n-held, o.dialsInFlight, 60*time.Second,
		drive.Options{Compression: o.compression})
	stop()
	if err != nil {
		if pool != nil {
			_ = pool.Close()
		}
		return nil, loadclient.Summary{}, err
	}
	b.bar.Set(n)
	return pool, pool.Stats().Summary(), nil
}

// measureIdle takes one idle point. The heap scrape comes first: it forces
// a GC, so RSS and the rest are read right after a collection.
func (b *bench) measureIdle(ctx context.Context, p *server.Process, sc *scrape.Client, conns int) (results.IdlePoint, error) {
	pt := results.IdlePoint{Conns: conns}
	var err error
	if pt.HeapInuseBytes, err = sc.HeapInuse(ctx); err != nil {
		return pt, err
	}
	if pt.Goroutines, err = sc.Goroutines(ctx); err != nil {
		return pt, err
	}
	// Let the scrape's connection close on the server's side before fds
	// are counted.
	wait.Sleep(ctx, 50*time.Millisecond)
	st, err := b.proc.ReadStatus(p.Pid())
	if err != nil {
		return pt, err
	}
	pt.RSSBytes, pt.Threads = st.RSSBytes, st.Threads
	if pt.FDs, err = b.proc.CountFDs(p.Pid()); err != nil {
		return pt, err
	}
	page := os.Getpagesize()
	if pt.KernelSlabBytes, err = b.proc.ReadSlabBytes(page); err != nil {
		return pt, fmt.Errorf("%w (kernel memory needs a readable /proc/slabinfo: run as root)", err)
	}
	ss, err := b.proc.ReadSockstat()
	if err != nil {
		return pt, err
	}
	pt.TCPMemBytes = ss.MemPages * int64(page)
	return pt, nil
}

// idleWindow is how long idle CPU is measured: one ping interval (every
// idle connection is pinged about once in it), at least 10 s.
func (b *bench) idleWindow(o idleOpts) time.Duration {
	if o.cpuWindow > 0 {
		return o.cpuWindow
	}
	return max(b.flags.pingInterval, 10*time.Second)
}

// idleCPU measures the server's CPU time, and the pings its clients
// answered, over the idle window.
func (b *bench) idleCPU(ctx context.Context, p *server.Process, design string, conns int, window time.Duration, pools []*drive.Subscribers) (*results.IdleCPU, error) {
	if conns == 0 {
		return nil, fmt.Errorf("no connection held")
	}
	b.bar.Phase(fmt.Sprintf("idle %s: CPU at %d connections over %v", design, conns, window), int(window.Seconds()))
	pings := func() (n uint64) {
		for _, pl := range pools {
			n += pl.PingsAnswered()
		}
		return n
	}
	pings0 := pings()
	c0, err := b.proc.ReadCPU(p.Pid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for time.Since(start) < window && ctx.Err() == nil {
		wait.Sleep(ctx, min(time.Second, window-time.Since(start)))
		b.bar.Set(int(time.Since(start).Seconds()))
	}
	c1, err := b.proc.ReadCPU(p.Pid())
	if err != nil {
		return nil, err
	}
	c := b.idleCPUOf(conns, time.Since(start), (c1 - c0).Seconds(), int64(pings()-pings0))
	if design == results.Wsgate && b.flags.heartbeat == "tcp" {
		c.Heartbeat = "tcp"
	}
	return c, nil
}

// idleCPUOf relates CPU seconds over a window to connections and pings.
func (b *bench) idleCPUOf(conns int, window time.Duration, cpu float64, pings int64) *results.IdleCPU {
	c := &results.IdleCPU{
		Conns: conns, PingInterval: b.flags.pingInterval.String(), WindowS: results.Round3(window.Seconds()), CPUS: cpu,
		PctCorePer10k: results.Round3(cpu / window.Seconds() * 100 * 10000 / float64(conns)),
		Pings:         pings,
	}
	if pings > 0 {
		c.CPUUsPerPing = results.Round3(cpu * 1e6 / float64(pings))
	}
	return c
}

// runIdleFloor measures the heartbeat floor (bench/floor's ping command)
// at the largest count: as many connections, pinged at the same interval
// over the designs' idle window, every pong read. Its CPU is read from
// /proc like the designs'.
func (b *bench) runIdleFloor(ctx context.Context, o idleOpts) {
	tag := "idle floor"
	n := slices.Max(o.sizes)
	p, err := b.startFloor(ctx, n, "idle")
	if err != nil {
		return
	}
	defer b.stopServer(p)
	b.bar.Phase(fmt.Sprintf("%s: %d connections", tag, n), 0)
	pool, err := drive.DialSubscribersWith(ctx, drive.Wsgate{}, p.Addr, n, o.dialsInFlight, 60*time.Second, drive.Options{})
	if err != nil {
		if pool != nil {
			_ = pool.Close()
		}
		b.run.Problem("%s: dial: %v", tag, err)
		return
	}
	defer pool.Close()
	var ready floor.Event
	if err := readFloorEvent(p, &ready); err != nil || ready.Event != "ready" || ready.Conns == 0 {
		b.run.Problem("%s: not ready (%v): %+v", tag, err, ready)
		return
	}
	interval, window := b.flags.pingInterval, b.idleWindow(o)
	b.bar.Phase(fmt.Sprintf("%s: pinging %d connections every %v for %v", tag, ready.Conns, interval, window), 0)
	c0, err0 := b.proc.ReadCPU(p.Pid())
	var ev floor.Event
	err = floorCommand(p, floor.Command{Cmd: "ping", DurationMs: int(window.Milliseconds()), IntervalMs: int(interval.Milliseconds())}, &ev)
	c1, err1 := b.proc.ReadCPU(p.Pid())
	if err := errors.Join(err, err0, err1); err != nil {
		b.run.Problem("%s: %v", tag, err)
		return
	}
	if ev.Pongs < ev.Messages {
		b.run.Problem("%s: read %d pongs for %d pings", tag, ev.Pongs, ev.Messages)
	}
	// Per 10k connections over the window pinged in, as for the designs;
	// the CPU includes reading that window's last pongs.
	b.run.Design(results.Floor).Idle = &results.Idle{IdleCPU: b.idleCPUOf(ready.Conns, window, (c1 - c0).Seconds(), int64(ev.Pongs))}
}

// linkIdleFloor sets every design's idle CPU per ping as a multiple of
// the heartbeat floor's.
func linkIdleFloor(run *results.Run) {
	fl := run.Find(results.Floor)
	if fl == nil || fl.Idle == nil || fl.Idle.IdleCPU == nil || fl.Idle.IdleCPU.CPUUsPerPing <= 0 {
		return
	}
	for _, d := range run.Designs {
		if d.Design == results.Floor || d.Idle == nil || d.Idle.IdleCPU == nil {
			continue
		}
		d.Idle.IdleCPU.CPUVsFloor = results.Round3(d.Idle.IdleCPU.CPUUsPerPing / fl.Idle.IdleCPU.CPUUsPerPing)
	}
}
