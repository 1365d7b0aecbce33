package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

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
}

func (o *idleOpts) register(fs *flag.FlagSet) {
	o.sizes = intList{1000, 5000, 10000, 19000}
	fs.Var(&o.sizes, "conns", "connection counts to measure at, ascending (the slope is fitted over them)")
	fs.DurationVar(&o.cpuWindow, "cpu-window", 0, "how long idle CPU is measured at the largest count (0: one ping interval, at least 10s)")
	fs.IntVar(&o.dialsInFlight, "dials-in-flight", 500, "concurrent connects+handshakes while growing")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause after each growth step before measuring")
	fs.StringVar(&o.subscribe, "subscribe", "", "subscribe every connection to this channel once it is upgraded (as \"wsbench million\"'s are): what a subscribed connection costs at rest; empty: connections subscribe to nothing")
	fs.BoolVar(&o.compression, "compression", false, "connections offer permessage-deflate (naive accepts it as gorilla's EnableCompression does): what negotiated compression costs at rest")
}

// idleCmd measures what idle connections cost each design.
func idleCmd(e env, args []string) int {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	var o idleOpts
	c.register(fs)
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

	cpu, err := b.idleCPU(ctx, p, design, held, o.cpuWindow)
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

// idleCPU measures the server's CPU time over one ping interval (every
// idle connection is pinged about once in it), at least 10 s.
func (b *bench) idleCPU(ctx context.Context, p *server.Process, design string, conns int, window time.Duration) (*results.IdleCPU, error) {
	if conns == 0 {
		return nil, fmt.Errorf("no connection held")
	}
	if window <= 0 {
		window = max(b.flags.pingInterval, 10*time.Second)
	}
	b.bar.Phase(fmt.Sprintf("idle %s: CPU at %d connections over %v", design, conns, window), int(window.Seconds()))
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
	el := time.Since(start)
	cpu := (c1 - c0).Seconds()
	return &results.IdleCPU{
		Conns: conns, PingInterval: b.flags.pingInterval.String(), WindowS: results.Round3(el.Seconds()), CPUS: cpu,
		PctCorePer10k: results.Round3(cpu / el.Seconds() * 100 * 10000 / float64(conns)),
	}, nil
}
