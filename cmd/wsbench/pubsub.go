package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/bench/pubsub"
)

// pubsubCmd checks fan-out end to end against running gateways and prints
// one JSON line with the verdict: exit 0 when every subscriber received
// every publication of its channel exactly once and in order, 1 when not
// (the reason also goes to stderr), 2 when the run could not start.
func pubsubCmd(e env, args []string) int {
	cfg, ok := parsePubsubFlags(e, args)
	if !ok {
		return 2
	}
	if _, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := pubsub.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench pubsub:", err)
		return 2
	}
	if err := json.NewEncoder(e.stdout).Encode(res); err != nil {
		e.log.Error("write result", "err", err)
		return 1
	}
	if !res.OK {
		fmt.Fprintln(e.stderr, "wsbench pubsub: FAILED:", res.Reason)
		return 1
	}
	return 0
}

func parsePubsubFlags(e env, args []string) (pubsub.Config, bool) {
	fs := flag.NewFlagSet("pubsub", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var cfg pubsub.Config
	var addrs, sources, mode string
	fs.StringVar(&addrs, "addrs", "127.0.0.1:8080", "comma-separated gateway addresses (IPv4:port); connections are spread round-robin")
	fs.StringVar(&cfg.Path, "path", pubsub.DefaultPath, "client protocol endpoint")
	fs.IntVar(&cfg.Channels, "channels", 1, "channels check:0 … check:N-1")
	fs.IntVar(&cfg.SubsPerChannel, "subs-per-channel", pubsub.DefaultSubsPerChannel, "reading subscribers per channel")
	fs.IntVar(&cfg.JSONSubscribers, "json-subscribers", 0, "how many subscribers use wsgate.v1.json instead of msgpack")
	fs.IntVar(&cfg.Publishers, "publishers", pubsub.DefaultPublishers, "publisher connections")
	fs.IntVar(&cfg.Messages, "messages", pubsub.DefaultMessages, "publications in total, split evenly over the publishers")
	fs.IntVar(&cfg.Size, "size", pubsub.DefaultSize, fmt.Sprintf("payload bytes (at least %d)", pubsub.PayloadHeader))
	fs.StringVar(&mode, "mode", string(pubsub.Lockstep), "lockstep (wait for each publish reply) or burst (pipeline up to --window)")
	fs.IntVar(&cfg.Window, "window", pubsub.DefaultWindow, "burst: unacknowledged publishes per publisher")
	fs.IntVar(&cfg.MaxLag, "max-lag", 0, "hold publishers while a channel is this many publications ahead of its slowest reader (0: off)")
	fs.IntVar(&cfg.NonReaders, "non-readers", 0, "extra subscribers on check:0 that do not read until --resume-after past the last publication")
	fs.DurationVar(&cfg.ResumeAfter, "resume-after", pubsub.DefaultResumeAfter, "when non-readers start reading, after publishing ends")
	fs.IntVar(&cfg.DialsInFlight, "dials-in-flight", pubsub.DefaultDialsInFlight, "concurrent connects+handshakes per pool")
	fs.StringVar(&sources, "source-ips", "", "comma-separated source IPv4 addresses for subscribers (default 127.0.0.1-127.0.0.8)")
	fs.DurationVar(&cfg.Timeout, "timeout", pubsub.DefaultTimeout, "bound on the whole run")
	fs.DurationVar(&cfg.Stall, "stall", pubsub.DefaultStall, "stop waiting when no delivery arrived for this long")
	if err := fs.Parse(args); err != nil {
		return cfg, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "wsbench pubsub: unexpected arguments %q\n", fs.Args())
		return cfg, false
	}
	cfg.Addrs = strings.Split(addrs, ",")
	if sources != "" {
		cfg.SourceIPs = strings.Split(sources, ",")
	}
	cfg.Mode = pubsub.Mode(mode)
	cfg.Log = e.log
	return cfg, true
}
