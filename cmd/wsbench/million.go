package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/million"
)

// millionOpts are the million scenario's flags besides the common ones.
type millionOpts struct {
	conns            int
	hold             time.Duration
	pongTimeout      time.Duration
	burst            int
	fdCap            int
	perServer        int
	dialsInFlight    int
	dialRate         float64
	maxFailures      int
	gomaxprocs       int
	clientNice       int
	redisNice        int
	handshakeTimeout time.Duration
	redials          int
	rampTimeout      time.Duration
	naiveRampTimeout time.Duration
	baselineWindow   time.Duration
	memFloor         byteSize
	naiveMemFloor    byteSize
	sysctls          bool
	sysctlRoot       string
	undoFile         string
	restoreOnly      bool
	logDir           string
}

func (o *millionOpts) register(fs *flag.FlagSet, c *commonFlags) {
	fs.StringVar(&c.target, "target", "both", "wsgate, naive, or both (wsgate first)")
	fs.StringVar(&c.wsgateBin, "wsgate-bin", "", "wsgate executable (default: beside wsbench, then $PATH)")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis every server shares (default: a private redis-server on a free loopback port)")
	fs.StringVar(&c.jsonOut, "json", "", "write every number to this JSON file")
	fs.StringVar(&c.reportDir, "report", "", `rewrite DIR/README.md's "A million connections" section and its charts`)
	fs.DurationVar(&c.pingInterval, "ping-interval", 25*time.Second, "the servers' ping interval")
	c.registerHeartbeat(fs)
	fs.IntVar(&o.conns, "conns", million.DefaultConns, "connections to hold")
	fs.DurationVar(&o.hold, "hold", 0, "idle phase (0: 60 s, and at least two ping intervals + 5 s)")
	fs.DurationVar(&o.pongTimeout, "pong-timeout", 10*time.Second, "wsgate --pong-timeout (naive: --pong-wait = ping interval + this)")
	fs.IntVar(&o.burst, "burst", million.DefaultBurst, "messages in the burst broadcast after the single one")
	fs.IntVar(&o.fdCap, "fd-cap", 0, "open files per process the layout plans with (0: this process's RLIMIT_NOFILE hard limit)")
	fs.IntVar(&o.perServer, "per-server", 0, "mean connections per server (0: the most that keeps the busiest under its cap)")
	fs.IntVar(&o.dialsInFlight, "dials-in-flight", million.DefaultDialsInFlight, "concurrent connects+handshakes over all load clients")
	fs.Float64Var(&o.dialRate, "dial-rate", million.DefaultDialRate, "connects started per second over all load clients (negative: unpaced)")
	fs.IntVar(&o.maxFailures, "max-failures", 0, "end a ramp after this many failed dials, server closes and refused subscribes (0: 1% of --conns, at least 100)")
	fs.IntVar(&o.clientNice, "client-nice", 5, "nice value of the load clients, so the servers and Redis come first (0: none)")
	fs.IntVar(&o.redisNice, "redis-nice", -10, "nice value of the private redis-server, so every server's Redis round trip stays short (0: none)")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 1, "GOMAXPROCS of every server and load-client process (0: Go's default, one per core)")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", 10*time.Second, "connect start to 101 deadline")
	fs.IntVar(&o.redials, "redials", 3, "times a load client starts a failed dial again, as a reconnecting client would (0: never)")
	fs.DurationVar(&o.rampTimeout, "ramp-timeout", million.DefaultRampTimeout, "end wsgate's ramp if it has not reached --conns by then")
	fs.DurationVar(&o.naiveRampTimeout, "naive-ramp-timeout", million.DefaultNaiveRampTimeout, "end the naive server's ramp if it has not reached --conns by then")
	fs.DurationVar(&o.baselineWindow, "baseline-window", 10*time.Second, "servers' CPU with no connection is measured this long before the ramp")
	o.memFloor, o.naiveMemFloor = million.DefaultMemFloor, million.DefaultNaiveMemFloor
	fs.Var(&o.memFloor, "mem-floor", "abort when MemAvailable falls below this (e.g. 4GiB)")
	fs.Var(&o.naiveMemFloor, "naive-mem-floor", "end the naive server's ramp below this MemAvailable")
	fs.BoolVar(&o.sysctls, "sysctls", true, "apply the sysctl profiles for the run (root) and restore them afterwards")
	fs.StringVar(&o.sysctlRoot, "sysctl-root", "/", "host tree the sysctls are applied under and wsgate doctor inspects (tests: a fake tree)")
	fs.StringVar(&o.undoFile, "undo-file", million.DefaultUndoPath, "where the replaced sysctl values wait until restored")
	fs.StringVar(&o.logDir, "logs", "", "write every server's and load client's output tail into this directory")
	fs.BoolVar(&o.restoreOnly, "restore", false, "only put back the sysctls an interrupted run left in --undo-file, then exit")
}

// millionCmd holds a million connections (--conns) across many processes.
func millionCmd(e env, args []string) int {
	fs := flag.NewFlagSet("million", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	c := commonFlags{broker: "redis"}
	var o millionOpts
	o.register(fs, &c)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if o.restoreOnly {
		return restoreLeftover(e, o)
	}
	if o.conns < 1 || o.burst < 1 || o.fdCap < 0 {
		fmt.Fprintln(e.stderr, "wsbench million: --conns and --burst must be positive, --fd-cap not negative")
		return 2
	}
	b, err := newBench(e, "million", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench million:", err)
		return 2
	}
	if o.fdCap == 0 {
		o.fdCap = int(b.run.Machine.NofileLimit)
	}
	wsgateBin := b.wsgate
	if wsgateBin == "" { // --target naive: the doctor still needs wsgate
		if wsgateBin, err = findWsgate(c.wsgateBin, b.self); err != nil {
			fmt.Fprintln(e.stderr, "wsbench million:", err)
			return 2
		}
	}
	// SIGHUP too: a closed terminal must not leave the host's sysctls
	// changed.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	cfg := million.Config{Conns: o.conns, Designs: b.designs, WsgateBin: wsgateBin, Self: b.self, RedisURL: c.redisURL,
		PingInterval: c.pingInterval, PongTimeout: o.pongTimeout, Heartbeat: c.heartbeat, Hold: o.hold, Burst: o.burst,
		FDCap: o.fdCap, PerServer: o.perServer, DialsInFlight: o.dialsInFlight, DialRate: o.dialRate,
		MaxFailures: o.maxFailures, GOMAXPROCS: gomaxprocs(o.gomaxprocs), ClientNice: niceValue(o.clientNice), RedisNice: redisNice(o.redisNice), HandshakeTimeout: o.handshakeTimeout, Redials: o.redials,
		RampTimeout: o.rampTimeout, NaiveRampTimeout: o.naiveRampTimeout, BaselineWindow: o.baselineWindow, MemFloor: int64(o.memFloor), NaiveMemFloor: int64(o.naiveMemFloor),
		LogDir: o.logDir, SysRoot: o.sysctlRoot, ApplySysctls: o.sysctls, UndoPath: o.undoFile, Log: e.log, Bar: b.bar}
	if err := million.Run(ctx, cfg, b.run); err != nil {
		b.run.Problem("%v", err)
	}
	if b.run.Host != nil && b.run.Host.Doctor != nil {
		fmt.Fprintf(e.stdout, "\n%s\n%s\n", b.run.Host.Doctor.Command, b.run.Host.Doctor.Output)
	}
	return b.finish()
}

// gomaxprocs maps the flag (0: Go's default) to million.Config.GOMAXPROCS
// (negative: Go's default).
func gomaxprocs(flag int) int {
	if flag == 0 {
		return -1
	}
	return flag
}

// niceValue maps the flag (0: none) to million.Config.ClientNice.
func niceValue(flag int) int {
	if flag == 0 {
		return -1
	}
	return flag
}

// redisNice maps the flag (0: none) to million.Config.RedisNice.
func redisNice(flag int) int {
	if flag == 0 {
		return 1
	}
	return flag
}

// restoreLeftover is --restore: put back what an interrupted run changed.
func restoreLeftover(e env, o millionOpts) int {
	changes, err := million.RestoreLeftover(o.sysctlRoot, o.undoFile)
	for _, ch := range changes {
		fmt.Fprintf(e.stdout, "%s = %s (was %s)\n", ch.Key, ch.New, ch.Old)
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench million --restore:", err)
		return 1
	}
	if changes == nil {
		fmt.Fprintf(e.stdout, "nothing to restore (%s: no such file)\n", o.undoFile)
	}
	return 0
}

// millionClientCmd is one load-client process of the million scenario
// (bench/million.RunClient), driven through stdin and stdout.
func millionClientCmd(e env, args []string) int {
	fs := flag.NewFlagSet("million-client", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var cfg million.ClientConfig
	var sources string
	fs.StringVar(&cfg.Addr, "addr", "", "the servers' shared address (IPv4 host:port)")
	fs.StringVar(&cfg.Path, "path", "/ws", "client protocol endpoint")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to open")
	fs.StringVar(&sources, "sources", "127.0.0.1", "comma-separated source IPv4 addresses")
	fs.StringVar(&cfg.Channel, "channel", million.DefaultChannel, "channel every connection subscribes to")
	fs.IntVar(&cfg.DialsInFlight, "dials-in-flight", 100, "concurrent connects+handshakes")
	fs.Float64Var(&cfg.DialRate, "dial-rate", 0, "connects started per second (0: as fast as --dials-in-flight allows)")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "connect start to 101 deadline")
	fs.IntVar(&cfg.Redials, "redials", 0, "times a failed dial is started again")
	fs.DurationVar(&cfg.ReportEvery, "report-every", million.DefaultReportEvery, "period of the report lines")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	cfg.Sources = strings.Split(sources, ",")
	if _, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	}
	in := e.stdin
	if in == nil {
		in = strings.NewReader("")
	}
	ctx, stop := signalContext()
	defer stop()
	if err := million.RunClient(ctx, cfg, in, e.stdout); err != nil {
		fmt.Fprintln(e.stderr, "wsbench million-client:", err)
		return 1
	}
	return 0
}

// byteSize is a flag holding a byte count written as 4GiB, 512MiB or
// plain bytes.
type byteSize int64

func (b *byteSize) String() string {
	switch v := int64(*b); {
	case v != 0 && v%(1<<30) == 0:
		return strconv.FormatInt(v>>30, 10) + "GiB"
	case v != 0 && v%(1<<20) == 0:
		return strconv.FormatInt(v>>20, 10) + "MiB"
	default:
		return strconv.FormatInt(v, 10)
	}
}

func (b *byteSize) Set(v string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(v, u.suffix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || f < 0 {
			return errors.New("want a size like 4GiB, 512MiB or a byte count")
		}
		*b = byteSize(f * float64(u.mult))
		return nil
	}
	return errors.New("want a size like 4GiB")
}
