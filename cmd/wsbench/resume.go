package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/resume"
)

// resumeCmd runs the resume storm (bench/resume) against wsgate on the
// Redis broker.
func resumeCmd(e env, args []string) int {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	c := commonFlags{target: results.Wsgate, broker: "redis", pingInterval: 25 * time.Second}
	fs.StringVar(&c.wsgateBin, "wsgate-bin", "", "wsgate executable (default: beside wsbench, then $PATH)")
	// Not c.redisURL: the scenario gives the gateways --redis-url itself,
	// its private redis-server's when none is given.
	redisURL := fs.String("redis-url", "", "Redis the gateways share (default: a private redis-server on a free loopback port)")
	fs.StringVar(&c.jsonOut, "json", "", "write every number to this JSON file")
	var o resume.Opts
	fs.IntVar(&o.Clients, "clients", 1000, "clients, spread evenly over the channels")
	fs.IntVar(&o.Channels, "channels", 10, "channels")
	fs.IntVar(&o.Messages, "messages", 20, "publications per channel while the clients are connected, before the restart")
	fs.Float64Var(&o.Rate, "rate", 20, "publications per second on every channel, from before the restart until everyone recovered")
	fs.IntVar(&o.HistorySize, "history-size", 1000, "the gateways' --history-size")
	fs.DurationVar(&o.DrainWindow, "drain-window", 2*time.Second, "the restarted gateway's --drain-window: its clients are closed (1001) over this long")
	fs.DurationVar(&o.Outage, "outage", 3*time.Second, "from the old gateway's exit to the new one's start")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "give up waiting for the reconnected clients after this long")
	fs.BoolVar(&o.PublishDuringStorm, "publish-during-storm", true, "keep publishing while the clients reconnect (replay and live delivery meet at a seam)")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintln(e.stderr, "wsbench resume:", err)
		return 2
	}
	b, err := newBench(e, "resume", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench resume:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	res := resume.Run(ctx, resume.Config{Opts: o, RedisURL: *redisURL, Servers: launcher{b}, Bar: b.bar}, b.run)
	return b.finishOwn(resume.Tables(res), res)
}
