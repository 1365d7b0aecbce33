package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

// allScenarios is the order "all" runs them in.
var allScenarios = []string{"idle", "fanout", "churn", "slow"}

// allCmd runs the standard side-by-side comparison: every scenario for
// every design, sized to finish in under fifteen minutes on a 2-core
// machine (about five for wsgate and naive, ten with Centrifugo), then
// prints, writes --json and --report like the single scenarios. "make
// bench" runs it with --target all --report bench.
func allCmd(e env, args []string) int {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	c.register(fs)
	var o allOpts
	o.register(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	scen, err := o.validate()
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench all:", err)
		return 2
	}
	b, err := newBench(e, "all", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench all:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	b.runAll(ctx, o, scen)
	return b.finish()
}

// allOpts are the options of every scenario `all` runs.
type allOpts struct {
	idle  idleOpts
	fan   fanoutOpts
	many  int // channels of the many-channel fan-out variant
	churn churnOpts
	slow  slowOpts
	only  string
}

func (o *allOpts) register(fs *flag.FlagSet) {
	o.idle.sizes = intList{1000, 5000, 10000, 19000}
	fs.Var(&o.idle.sizes, "idle-conns", "idle: connection counts the slopes are fitted over")
	fs.DurationVar(&o.idle.cpuWindow, "cpu-window", 0, "idle: CPU measurement window (0: one ping interval, at least 10s)")
	fs.DurationVar(&o.idle.settle, "settle", time.Second, "idle: pause after each growth step before measuring")
	o.idle.dialsInFlight = 500

	fan := &o.fan
	fs.IntVar(&fan.subs, "fanout-subs", 10000, "fanout: subscribers")
	fs.IntVar(&o.many, "many-channels", 100, "fanout: channels of the many-channel variant (0: skip it)")
	fs.Float64Var(&fan.rate, "rate", 4, "fanout: publish rounds per second in rate mode")
	fs.DurationVar(&fan.duration, "duration", 10*time.Second, "fanout: rate mode duration")
	fs.IntVar(&fan.burst, "burst", 20, "fanout: messages per burst per channel")
	fs.IntVar(&fan.bursts, "bursts", 5, "fanout: bursts")
	fs.BoolVar(&fan.floor, "floor", true, "also measure the floors (bench/floor): the heartbeat floor after idle, the bare write loop after fanout")
	fan.channels, fan.burstPause, fan.modes, fan.dialsInFlight, fan.stall = 1, 200*time.Millisecond, "rate,burst", 500, 5*time.Second

	fs.IntVar(&o.churn.conns, "churn-conns", 19000, "churn: clients dialing at once")
	fs.IntVar(&o.churn.rounds, "churn-rounds", 3, "churn: storms")
	o.churn.pause, o.churn.handshakeTimeout = 500*time.Millisecond, 15*time.Second

	slow := &o.slow
	fs.IntVar(&slow.subs, "slow-subs", 1000, "slow: subscribers, readers and non-readers")
	fs.Float64Var(&slow.share, "slow-share", 0.1, "slow: share of non-readers")
	fs.IntVar(&slow.payload, "slow-payload", 16384, "slow: bytes per publication")
	fs.Float64Var(&slow.rate, "slow-rate", 25, "slow: publications per second")
	fs.DurationVar(&slow.phase, "slow-phase", 15*time.Second, "slow: length of each phase")
	fs.IntVar(&slow.rounds, "slow-rounds", 3, "slow: windows each phase is split into, alternating alone and with non-readers")
	slow.rcvBuf, slow.dialsInFlight, slow.stall = 4096, 500, 5*time.Second

	fs.StringVar(&o.only, "scenarios", strings.Join(allScenarios, ","), "scenarios to run, comma-separated")
}

// validate checks the options and returns the scenarios to run.
func (o *allOpts) validate() ([]string, error) {
	o.idle.floor = o.fan.floor // one --floor for both
	scen, err := pickScenarios(o.only)
	if err == nil {
		_, err = o.fan.modeList()
	}
	if err == nil && slices.Contains(scen, "slow") {
		_, _, err = o.slow.split()
	}
	if err == nil && (o.churn.conns < 1 || o.churn.rounds < 1) {
		err = fmt.Errorf("--churn-conns and --churn-rounds must be positive")
	}
	return scen, err
}

// runAll runs each scenario for every design in turn; after the designs'
// idle runs comes the heartbeat floor, after their fan-outs the fan-out
// floor and the many-channel variant.
func (b *bench) runAll(ctx context.Context, o allOpts, scen []string) {
	modes, _ := o.fan.modeList()
	for _, s := range scen {
		for _, d := range b.designs {
			if ctx.Err() != nil {
				break
			}
			switch s {
			case "idle":
				b.runIdle(ctx, d, o.idle)
			case "fanout":
				b.runFanout(ctx, d, o.fan, modes)
			case "churn":
				b.runChurn(ctx, d, o.churn)
			case "slow":
				b.runSlow(ctx, d, o.slow)
			}
		}
		if s == "idle" && o.idle.floor && ctx.Err() == nil {
			b.runIdleFloor(ctx, o.idle)
			linkIdleFloor(b.run)
		}
		if s != "fanout" || ctx.Err() != nil {
			continue
		}
		if o.fan.floor {
			b.runFloor(ctx, o.fan, modes)
		}
		if o.many > 1 {
			m := o.fan
			m.channels = min(o.many, o.fan.subs)
			for _, d := range b.designs {
				if ctx.Err() == nil {
					b.runFanout(ctx, d, m, modes)
				}
			}
		}
		linkFloor(b.run)
	}
}

func pickScenarios(list string) ([]string, error) {
	var out []string
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allScenarios, s) {
			return nil, fmt.Errorf("--scenarios: %q is not one of %s", s, strings.Join(allScenarios, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}
