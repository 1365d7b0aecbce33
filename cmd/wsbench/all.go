package main

import (
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
	var idle idleOpts
	idle.sizes = intList{1000, 5000, 10000, 19000}
	fs.Var(&idle.sizes, "idle-conns", "idle: connection counts the slopes are fitted over")
	fs.DurationVar(&idle.cpuWindow, "cpu-window", 0, "idle: CPU measurement window (0: one ping interval, at least 10s)")
	fs.DurationVar(&idle.settle, "settle", time.Second, "idle: pause after each growth step before measuring")
	idle.dialsInFlight = 500

	var fan fanoutOpts
	fs.IntVar(&fan.subs, "fanout-subs", 10000, "fanout: subscribers")
	many := fs.Int("many-channels", 100, "fanout: channels of the many-channel variant (0: skip it)")
	fs.Float64Var(&fan.rate, "rate", 4, "fanout: publish rounds per second in rate mode")
	fs.DurationVar(&fan.duration, "duration", 10*time.Second, "fanout: rate mode duration")
	fs.IntVar(&fan.burst, "burst", 20, "fanout: messages per burst per channel")
	fs.IntVar(&fan.bursts, "bursts", 5, "fanout: bursts")
	fan.channels, fan.burstPause, fan.modes, fan.floor, fan.dialsInFlight, fan.stall = 1, 200*time.Millisecond, "rate,burst", true, 500, 5*time.Second

	var churn churnOpts
	fs.IntVar(&churn.conns, "churn-conns", 19000, "churn: clients dialing at once")
	fs.IntVar(&churn.rounds, "churn-rounds", 3, "churn: storms")
	churn.pause, churn.handshakeTimeout = 500*time.Millisecond, 15*time.Second

	var slow slowOpts
	fs.IntVar(&slow.subs, "slow-subs", 1000, "slow: subscribers, readers and non-readers")
	fs.Float64Var(&slow.share, "slow-share", 0.1, "slow: share of non-readers")
	fs.IntVar(&slow.payload, "slow-payload", 16384, "slow: bytes per publication")
	fs.Float64Var(&slow.rate, "slow-rate", 25, "slow: publications per second")
	fs.DurationVar(&slow.phase, "slow-phase", 15*time.Second, "slow: length of each phase")
	fs.IntVar(&slow.rounds, "slow-rounds", 3, "slow: windows each phase is split into, alternating alone and with non-readers")
	slow.rcvBuf, slow.dialsInFlight, slow.stall = 4096, 500, 5*time.Second

	only := fs.String("scenarios", strings.Join(allScenarios, ","), "scenarios to run, comma-separated")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	scen, err := pickScenarios(*only)
	if err == nil {
		_, err = fan.modeList()
	}
	if err == nil && slices.Contains(scen, "slow") {
		_, _, err = slow.split()
	}
	if err == nil && (churn.conns < 1 || churn.rounds < 1) {
		err = fmt.Errorf("--churn-conns and --churn-rounds must be positive")
	}
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
	modes, _ := fan.modeList()
	for _, s := range scen {
		for _, d := range b.designs {
			if ctx.Err() != nil {
				break
			}
			switch s {
			case "idle":
				b.runIdle(ctx, d, idle)
			case "fanout":
				b.runFanout(ctx, d, fan, modes)
			case "churn":
				b.runChurn(ctx, d, churn)
			case "slow":
				b.runSlow(ctx, d, slow)
			}
		}
		if s != "fanout" || ctx.Err() != nil {
			continue
		}
		if fan.floor {
			b.runFloor(ctx, fan, modes)
		}
		if *many > 1 {
			m := fan
			m.channels = min(*many, fan.subs)
			for _, d := range b.designs {
				if ctx.Err() == nil {
					b.runFanout(ctx, d, m, modes)
				}
			}
		}
		linkFloor(b.run)
	}
	return b.finish()
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
