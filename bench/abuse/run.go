package abuse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/wait"
)

// runner is one run of the scenario; problems go to run.
type runner struct {
	cfg Config
	run *results.Run
}

// Run measures every variant of cfg.Variants, each on a gateway of its
// own; problems go to run.
func Run(ctx context.Context, cfg Config, run *results.Run) *Result {
	o := cfg.Opts
	res := &Result{Clients: o.Clients, PingRate: o.PingRate, PhaseS: o.Phase.Seconds(), Rounds: o.Rounds, AbuserSched: o.AbuserSched}
	if o.InProcess {
		res.AbuserSched = SchedInProcess
	}
	variants, err := o.VariantList()
	if err != nil {
		run.Problem("abuse: %v", err)
		return res
	}
	r := &runner{cfg: cfg, run: run}
	for _, v := range variants {
		if ctx.Err() == nil {
			if got := r.variant(ctx, v); got != nil {
				res.Variants = append(res.Variants, got)
			}
		}
	}
	return res
}

// gatewayFlags are the wsgate flags a variant is measured with.
func gatewayFlags(o Opts, variant string) []string {
	var extra []string
	switch variant {
	case VariantFlood:
		extra = []string{"--command-rate", strconv.FormatFloat(o.CommandRate, 'f', -1, 64), "--command-burst", strconv.Itoa(o.CommandBurst)}
	case VariantStorm:
		extra = []string{"--max-conns-per-ip", strconv.Itoa(o.MaxConnsPerIP), "--max-conns", strconv.Itoa(o.MaxConns)}
	}
	return append(extra, strings.Fields(o.GatewayArgs)...)
}

// variant measures one variant on a gateway of its own.
func (r *runner) variant(ctx context.Context, variant string) *Variant {
	o := r.cfg.Opts
	extra := gatewayFlags(o, variant)
	v := &Variant{Variant: variant, Flags: extra}
	tag := "abuse " + variant
	p, err := r.cfg.Servers.Start(ctx, results.Wsgate, extra...)
	if err != nil {
		return nil
	}
	defer r.cfg.Servers.Stop(p)
	r.cfg.Bar.Phase(fmt.Sprintf("%s: %d well-behaved clients", tag, o.Clients), 0)
	pg, err := dialPingers(ctx, p.Addr, o.Clients)
	if err != nil {
		r.run.Problem("%s: %v", tag, err)
		return nil
	}
	defer pg.close()
	pg.start(o.PingRate)
	wait.Sleep(ctx, o.Warmup)

	// Alternate unloaded and loaded windows (--rounds): on a shared
	// machine the load of other work drifts over tens of seconds, and
	// alternating puts both kinds of window under the same drift.
	w := &windows{tag: tag, v: v, p: p, pg: pg, sc: scrape.New(p.DebugAddr), unloaded: &pingPhase{}, loaded: &pingPhase{}}
	for round := range o.Rounds {
		if ctx.Err() != nil {
			break
		}
		if err := r.round(ctx, w, round); err != nil {
			r.run.Problem("%s: %v", tag, err)
			return nil
		}
	}
	v.Unloaded, v.Loaded = w.unloaded.result(), w.loaded.result()
	v.GatewayCPUUnloaded, v.GatewayCPULoaded, v.AbuserCPU = results.Round3(v.GatewayCPUUnloaded), results.Round3(v.GatewayCPULoaded), results.Round3(v.AbuserCPU)
	v.PingsLost = pg.stop(5 * time.Second)
	v.PoliteCut = pg.pool.Stats().Closed
	if v.Unloaded.LatencyMs.P99 > 0 {
		v.P99Ratio = results.Round3(v.Loaded.LatencyMs.P99 / v.Unloaded.LatencyMs.P99)
	}
	r.check(tag, v, p)
	return v
}

// windows is what a variant's rounds share.
type windows struct {
	tag              string
	v                *Variant
	p                *server.Process
	pg               *pingers
	sc               *scrape.Client
	unloaded, loaded *pingPhase
}

// round measures one unloaded window, then one under a fresh abuser.
func (r *runner) round(ctx context.Context, w *windows, round int) error {
	o, v, tag := r.cfg.Opts, w.v, w.tag
	window := o.Phase / time.Duration(o.Rounds)
	of := fmt.Sprintf(" (round %d of %d)", round+1, o.Rounds)
	r.cfg.Bar.Phase(fmt.Sprintf("%s: unloaded, %v%s", tag, window, of), 0)
	cpu := r.cpuMeter(w.p.Pid())
	w.pg.measureInto(ctx, w.unloaded, window)
	v.GatewayCPUUnloaded += cpu() / float64(o.Rounds)

	switch v.Variant {
	case VariantFlood:
		r.cfg.Bar.Phase(fmt.Sprintf("%s: one client floods publishes, %v%s", tag, window, of), 0)
	case VariantStorm:
		r.cfg.Bar.Phase(fmt.Sprintf("%s: storms of %d connections, %v%s", tag, o.StormConns, window, of), 0)
	default:
		r.cfg.Bar.Phase(fmt.Sprintf("%s: %d stalled clients, %v%s", tag, o.StallConns, window, of), 0)
	}
	// /metrics is sampled only while abused (scraping costs the gateway
	// CPU the unloaded windows must not pay).
	sampler := startSampler(w.sc, o.Sample)
	a, err := r.startAbuser(r.abuserArgs(v.Variant, w.p.Addr), o.InProcess)
	if err != nil {
		sampler.stop()
		return err
	}
	cpu = r.cpuMeter(w.p.Pid())
	abuserCPU := func() float64 { return 0 }
	if a.cmd != nil {
		abuserCPU = r.cpuMeter(a.cmd.Process.Pid)
	}
	w.pg.measureInto(ctx, w.loaded, window)
	v.GatewayCPULoaded += cpu() / float64(o.Rounds)
	v.AbuserCPU += abuserCPU() / float64(o.Rounds)
	got := Variant{Variant: v.Variant}
	if err := a.finish(&got); err != nil {
		r.run.Problem("%s: abuser: %v", tag, err)
	}
	v.Flood, v.Storm, v.Stall = got.Flood.mergeInto(v.Flood), got.Storm.mergeInto(v.Storm), got.Stall.mergeInto(v.Stall)
	maxOpen, samples := sampler.stop()
	v.MaxConnsOpen, v.Samples = max(v.MaxConnsOpen, maxOpen), v.Samples+samples
	// The abuser's last connections are still being closed: let the
	// gateway settle before the next unloaded window.
	wait.For(ctx, 5*time.Second, func() bool {
		m, err := w.sc.Metrics(ctx)
		return err == nil && m["wsgate_conns_open"] <= float64(o.Clients)
	})
	return nil
}

// abuserArgs is what the abuser of variant is told.
func (r *runner) abuserArgs(variant, addr string) AbuserArgs {
	o := r.cfg.Opts
	a := AbuserArgs{Mode: variant, Addr: addr, Channel: o.FloodChannel, Reconnect: o.FloodReconnect, Conns: o.StormConns, IPs: o.StormIPs, Hold: o.StormHold}
	if variant == VariantStall {
		a.Conns = o.StallConns
	}
	return a
}

// check records what should not have happened.
func (r *runner) check(tag string, v *Variant, p *server.Process) {
	o := r.cfg.Opts
	if v.PoliteCut > 0 {
		r.run.Problem("%s: the gateway closed %d well-behaved clients", tag, v.PoliteCut)
	}
	if n := v.Unloaded.Errors + v.Loaded.Errors; n > 0 {
		r.run.Problem("%s: %d pings answered with an error", tag, n)
	}
	if v.PingsLost > 0 {
		r.run.Problem("%s: %d pings never answered", tag, v.PingsLost)
	}
	if f := v.Flood; f != nil {
		if f.Connections == 0 || f.Closes[int(CloseRateLimitedCode)] == 0 {
			r.run.Problem("%s: the flooder was never closed with %d: closes %v", tag, CloseRateLimitedCode, f.Closes)
		}
		if f.RateLimited == 0 {
			r.run.Problem("%s: the flooder never got error 107", tag)
		}
	}
	if s := v.Storm; s != nil {
		if v.MaxConnsOpen > float64(o.MaxConns) {
			r.run.Problem("%s: wsgate_conns_open reached %.0f, over --max-conns %d", tag, v.MaxConnsOpen, o.MaxConns)
		}
		if s.MaxPerIP > o.MaxConnsPerIP {
			r.run.Problem("%s: %d connections from one address were upgraded at once, over --max-conns-per-ip %d", tag, s.MaxPerIP, o.MaxConnsPerIP)
		}
	}
	if st := v.Stall; st != nil {
		opened := 0
		for _, n := range st.Opened {
			opened += n
		}
		if want := o.StallConns * o.Rounds; opened < want {
			r.run.Problem("%s: %d of %d stalled clients opened (%s)", tag, opened, want, st.FirstError)
		}
	}
	if v.Samples == 0 {
		r.run.Problem("%s: /metrics never answered while loaded", tag)
	}
	if p.Exited() {
		r.run.Problem("%s: %v", tag, p.ExitError())
	}
}

// cpuMeter starts measuring pid's CPU time; the function it returns gives
// the % of one core used since (0 when /proc could not be read).
func (r *runner) cpuMeter(pid int) func() float64 {
	t0, err0 := r.cfg.Proc.ReadCPU(pid)
	start := time.Now()
	return func() float64 {
		t1, err1 := r.cfg.Proc.ReadCPU(pid)
		if err0 != nil || err1 != nil {
			return 0
		}
		return results.Round3(100 * (t1 - t0).Seconds() / time.Since(start).Seconds())
	}
}
