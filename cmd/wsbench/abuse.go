package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/bench/abuse"
	"github.com/wsgate/wsgate/bench/harness/results"
)

func registerAbuse(fs *flag.FlagSet, o *abuse.Opts) {
	fs.IntVar(&o.Clients, "clients", 100, "well-behaved clients")
	fs.Float64Var(&o.PingRate, "ping-rate", 10, "ping round trips per second per well-behaved client")
	fs.DurationVar(&o.Phase, "phase", 10*time.Second, "length of each measurement: unloaded, then under abuse")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "pinging before the unloaded measurement starts")
	fs.StringVar(&o.Variants, "variants", abuse.VariantFlood+","+abuse.VariantStorm+","+abuse.VariantStall, "abuse to run: flood (publishes as fast as possible), storm (a connection storm), stall (clients stalled mid-handshake and mid-frame)")
	fs.IntVar(&o.StallConns, "stall-conns", 3000, "stall: stalled clients, a third each half handshakes, half frames and one-byte-a-second tricklers")
	fs.Float64Var(&o.CommandRate, "command-rate", 100, "flood: the gateway's --command-rate")
	fs.IntVar(&o.CommandBurst, "command-burst", 50, "flood: the gateway's --command-burst")
	fs.StringVar(&o.FloodChannel, "flood-channel", "flood", "flood: the channel flooded (nobody subscribes to it)")
	fs.BoolVar(&o.FloodReconnect, "flood-reconnect", true, "flood: the flooder connects again as soon as it is closed (false: one connection, closed within milliseconds)")
	fs.IntVar(&o.MaxConnsPerIP, "max-conns-per-ip", 1000, "storm: the gateway's --max-conns-per-ip")
	fs.IntVar(&o.MaxConns, "max-conns", 3000, "storm: the gateway's --max-conns")
	fs.IntVar(&o.StormConns, "storm-conns", 5000, "storm: connections dialed at once in each round")
	fs.IntVar(&o.StormIPs, "storm-ips", 4, "storm: source addresses the storm comes from (127.0.1.1 …); the first sends two shares, the others one")
	fs.DurationVar(&o.StormHold, "storm-hold", time.Second, "storm: how long a round holds what it got before closing it and dialing again")
	fs.DurationVar(&o.Sample, "sample", 100*time.Millisecond, "how often the gateway's /metrics is sampled while abused (a scrape costs the gateway 1.5–3 ms of CPU: at 25 ms that is 5–10 % of a core the unloaded windows do not pay)")
	fs.StringVar(&o.GatewayArgs, "gateway-args", "", "more wsgate serve flags for both variants, space-separated (e.g. \"--accept-rate 500\")")
	fs.BoolVar(&o.InProcess, "abuser-in-process", false, "run the abuser inside wsbench instead of its own process (\"wsbench abuser\")")
	fs.StringVar(&o.AbuserSched, "abuser-sched", abuse.SchedIdle, "the abuser process's scheduling class: idle (SCHED_IDLE: it stands for clients on other machines and gets only CPU time the gateway and the measured clients leave) or normal (it competes with them for the two cores)")
	fs.IntVar(&o.Rounds, "rounds", 3, "split each phase into this many windows, alternating unloaded and under abuse (a fresh abuser each time; 1: one of each)")
}

// abuseCmd measures well-behaved clients' latency under abuse
// (bench/abuse).
func abuseCmd(e env, args []string) int {
	fs := flag.NewFlagSet("abuse", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	c.register(fs)
	var o abuse.Opts
	registerAbuse(fs, &o)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if _, err := o.VariantList(); err != nil {
		fmt.Fprintln(e.stderr, "wsbench abuse:", err)
		return 2
	}
	if c.target != results.Wsgate && c.target != "both" {
		fmt.Fprintln(e.stderr, "wsbench abuse: only wsgate has the limits under test (--target wsgate)")
		return 2
	}
	c.target = results.Wsgate
	b, err := newBench(e, "abuse", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench abuse:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	res := abuse.Run(ctx, abuse.Config{Opts: o, Servers: launcher{b}, Bar: b.bar, Proc: b.proc, Self: b.self}, b.run)
	return b.finishOwn(abuse.Tables(res, o), res)
}

// abuserCmd is "wsbench abuser": one abuse against a gateway until stdin
// closes or SIGTERM, then what it saw as one JSON line.
func abuserCmd(e env, args []string) int {
	fs := flag.NewFlagSet("abuser", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var a abuse.AbuserArgs
	fs.StringVar(&a.Mode, "mode", abuse.VariantFlood, "flood: one client publishing as fast as it can; storm: connection storms; stall: stalled clients")
	fs.StringVar(&a.Addr, "addr", "", "the gateway's address")
	fs.StringVar(&a.Channel, "channel", "flood", "flood: the channel")
	fs.BoolVar(&a.Reconnect, "reconnect", true, "flood: connect again as soon as the gateway closed the connection")
	fs.IntVar(&a.Conns, "conns", 5000, "storm: connections per round; stall: stalled clients")
	fs.IntVar(&a.IPs, "ips", 4, "storm: source addresses (127.0.1.1 …)")
	fs.DurationVar(&a.Hold, "hold", time.Second, "storm: how long a round holds its connections")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if a.Addr == "" || (a.Mode != abuse.VariantFlood && a.Mode != abuse.VariantStorm && a.Mode != abuse.VariantStall) || a.Conns < 1 || a.IPs < 1 || a.IPs > 254 {
		fmt.Fprintln(e.stderr, "wsbench abuser: need --addr, --mode flood|storm|stall, positive --conns, 1 ≤ --ips ≤ 254")
		return 2
	}
	if _, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	}
	ctx, stop := signalContext()
	defer stop()
	if err := abuse.RunAbuser(ctx, a, e.stdin, e.stdout); err != nil {
		e.log.Error("abuser", "err", err)
		return 1
	}
	return 0
}
