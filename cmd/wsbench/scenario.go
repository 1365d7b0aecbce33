package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/centrifugo"
	"github.com/wsgate/wsgate/bench/floor"
	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/harness/progress"
	"github.com/wsgate/wsgate/bench/harness/report"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
)

// commonFlags are the flags every scenario takes.
type commonFlags struct {
	target        string
	wsgateBin     string
	centrifugoBin string
	broker        string
	redisURL      string
	jsonOut       string
	reportDir     string
	pingInterval  time.Duration
	heartbeat     string
	projectConns  int
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.target, "target", "both", "wsgate, naive, centrifugo, both (wsgate and naive) or all (the three), one after the other in one run")
	fs.StringVar(&c.wsgateBin, "wsgate-bin", "", "wsgate executable (default: beside wsbench, then $PATH)")
	fs.StringVar(&c.centrifugoBin, "centrifugo-bin", "", "Centrifugo executable (default: "+centrifugo.Version+" from the cache, installed there with go install when missing)")
	fs.StringVar(&c.broker, "broker", "memory", "broker the servers use: memory or redis")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis URL for --broker redis (passed to the servers)")
	fs.StringVar(&c.jsonOut, "json", "", "write every number to this JSON file")
	fs.StringVar(&c.reportDir, "report", "", "write the Markdown report (README.md results section) and SVG charts into this directory")
	fs.DurationVar(&c.pingInterval, "ping-interval", 25*time.Second, "the servers' ping interval")
	fs.IntVar(&c.projectConns, "project", 1000000, "connections the memory/fd budget is projected to")
}

// registerHeartbeat adds --heartbeat, which only wsgate has, to the
// scenarios that measure idle connections and report it (idle, million);
// the others run wsgate with its default.
func (c *commonFlags) registerHeartbeat(fs *flag.FlagSet) {
	fs.StringVar(&c.heartbeat, "heartbeat", "ping", "wsgate --heartbeat: ping (WebSocket pings) or tcp (the kernel's keepalive probes); the other designs always ping")
}

// designs returns the designs --target names, in run order.
func (c *commonFlags) designs() ([]string, error) {
	switch c.target {
	case "both":
		return []string{results.Wsgate, results.Naive}, nil
	case "all":
		return []string{results.Wsgate, results.Naive, results.Centrifugo}, nil
	case results.Wsgate, results.Naive, results.Centrifugo:
		return []string{c.target}, nil
	}
	return nil, fmt.Errorf("--target %q: want wsgate, naive, centrifugo, both or all", c.target)
}

// bench is one scenario command's run: its servers, progress and results.
type bench struct {
	e       env
	flags   commonFlags
	designs []string
	bar     *progress.Bar
	run     *results.Run
	start   time.Time
	self    string // this executable: runs "naive" and "floor"
	wsgate  string // "" when --target naive
	proc    procfs.Root

	// Centrifugo's binary, the directory its configuration is written to
	// and the key of its HTTP API (see targets.go).
	centrifugo, tmpDir, apiKey string
}

// newBench validates the common flags and finds the executables.
func newBench(e env, command string, args []string, c commonFlags) (*bench, error) {
	designs, err := c.designs()
	if err != nil {
		return nil, err
	}
	if c.broker != "memory" && c.broker != "redis" {
		return nil, fmt.Errorf("--broker %q: want memory or redis", c.broker)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate wsbench: %w", err)
	}
	b := &bench{e: e, flags: c, designs: designs, bar: progress.New(e.stderr), self: self, proc: procfs.Proc, start: time.Now()}
	if slices.Contains(designs, results.Wsgate) {
		if b.wsgate, err = findWsgate(c.wsgateBin, self); err != nil {
			return nil, err
		}
	}
	if _, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	}
	cmdline := strings.TrimSpace("wsbench " + command + " " + strings.Join(args, " "))
	b.run = results.NewRun(cmdline, b.proc.ReadMachine(), time.Now())
	ctx, stop := signalContext()
	defer stop()
	b.setupCentrifugo(ctx)
	return b, nil
}

// findWsgate returns --wsgate-bin, else wsgate beside wsbench, else wsgate
// on $PATH.
func findWsgate(flagValue, self string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("--wsgate-bin: %w", err)
		}
		return flagValue, nil
	}
	beside := filepath.Join(filepath.Dir(self), "wsgate")
	if st, err := os.Stat(beside); err == nil && !st.IsDir() {
		return beside, nil
	}
	p, err := exec.LookPath("wsgate")
	if err != nil {
		return "", errors.New("wsgate not found beside wsbench nor on $PATH: build it (make build) or pass --wsgate-bin")
	}
	return p, nil
}

// signalContext ends on SIGINT/SIGTERM, so servers are stopped on Ctrl-C.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// serverSpec is how design is started: its own process, loopback
// listeners, same ping interval and broker for every design.
func (b *bench) serverSpec(design string, extra ...string) (server.Spec, error) {
	ping := b.flags.pingInterval.String()
	switch design {
	case results.Wsgate:
		args := []string{"serve", "--ping-interval", ping, "--log-level", "warn", "--broker", b.flags.broker}
		if b.flags.heartbeat != "" {
			args = append(args, "--heartbeat", b.flags.heartbeat)
		}
		if b.flags.redisURL != "" {
			args = append(args, "--redis-url", b.flags.redisURL)
		}
		return server.Spec{Name: design, Bin: b.wsgate, Args: append(args, extra...), Debug: true}, nil
	case results.Naive:
		// The naive server drops a connection whose pong is later than
		// --pong-wait after its last one, so it must exceed the interval.
		args := []string{"naive", "--ping-interval", ping, "--pong-wait", (b.flags.pingInterval + 10*time.Second).String()}
		args = append(args, "--broker", b.flags.broker)
		if b.flags.redisURL != "" {
			// As for wsgate: without --redis-url both use their default.
			args = append(args, "--redis-url", b.flags.redisURL)
		}
		return server.Spec{Name: design, Bin: b.self, Args: append(args, extra...), Debug: true}, nil
	case results.Centrifugo:
		if len(extra) > 0 {
			return server.Spec{}, fmt.Errorf("centrifugo takes no extra flags (%q)", extra)
		}
		return b.centrifugoSpec()
	}
	return server.Spec{}, fmt.Errorf("unknown design %q", design)
}

// startServer starts design and records a problem when it cannot.
func (b *bench) startServer(ctx context.Context, design string, extra ...string) (*server.Process, error) {
	spec, err := b.serverSpec(design, extra...)
	if err != nil {
		return nil, err
	}
	p, err := server.Start(ctx, spec)
	if err != nil {
		b.run.Problem("%s: start: %v", design, err)
		return nil, err
	}
	return p, nil
}

// startFloor starts "wsbench floor" for conns connections.
func (b *bench) startFloor(ctx context.Context, conns int, channel string) (*server.Process, error) {
	spec := server.Spec{Name: results.Floor, Bin: b.self, Control: true,
		Args: []string{"floor", "--conns", strconv.Itoa(conns), "--channel", channel}}
	p, err := server.Start(ctx, spec)
	if err != nil {
		b.run.Problem("floor: start: %v", err)
		return nil, err
	}
	var ev floor.Event
	if err := decodeLine(p.FirstLine, &ev); err != nil || ev.Event != "listening" {
		_ = p.Kill()
		b.run.Problem("floor: unexpected first line %q", p.FirstLine)
		return nil, fmt.Errorf("floor: first line %q", p.FirstLine)
	}
	return p, nil
}

// stopServer stops p; a server that crashed or would not stop is a problem.
func (b *bench) stopServer(p *server.Process) {
	if p == nil {
		return
	}
	crashed := p.ExitError()
	if crashed == nil && p.DebugAddr != "" {
		// The clients have just closed: let the server see it first.
		// wsgate's shutdown otherwise spends its whole drain window (10 s)
		// on connections that are already gone.
		sc := scrape.New(p.DebugAddr)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			m, err := sc.Metrics(context.Background())
			if err != nil || connsOpen(p.Name, m) == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := p.Stop(); err != nil {
		if crashed != nil {
			b.run.Problem("%s exited during the run: %v", p.Name, err)
		} else {
			b.run.Problem("%s: stop: %v", p.Name, err)
		}
	}
}

// finish prints the tables, writes --json and --report, and returns the
// exit code: 1 when anything went wrong (the problems are printed too).
func (b *bench) finish() int {
	b.bar.Done()
	if b.tmpDir != "" {
		_ = os.RemoveAll(b.tmpDir)
	}
	b.run.Seconds = time.Since(b.start).Round(time.Millisecond).Seconds()
	b.run.LoadAvgEnd, _ = b.proc.ReadLoadAvg()
	b.run.Projection = nil
	for _, d := range b.run.Designs {
		if p, ok := results.Project(d, b.flags.projectConns); ok {
			b.run.Projection = append(b.run.Projection, p)
		}
	}
	fmt.Fprint(b.e.stdout, report.Text(b.run))
	code := 0
	if b.flags.jsonOut != "" {
		if err := b.run.Write(b.flags.jsonOut); err != nil {
			fmt.Fprintln(b.e.stderr, "wsbench: write json:", err)
			code = 1
		}
	}
	if b.flags.reportDir != "" {
		if err := report.Write(b.flags.reportDir, b.run); err != nil {
			fmt.Fprintln(b.e.stderr, "wsbench: write report:", err)
			code = 1
		}
	}
	if len(b.run.Problems) > 0 {
		fmt.Fprintln(b.e.stderr, "wsbench: problems during the run:")
		for _, p := range b.run.Problems {
			fmt.Fprintln(b.e.stderr, "  -", p)
		}
		code = 1
	}
	return code
}

// intList is a comma-separated list of positive integers flag.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// parseFlags parses args into fs; ok false means exit with code.
func parseFlags(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, 0
		}
		return false, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "wsbench %s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return false, 2
	}
	return true, 0
}

// finishOwn ends a scenario with its own result shape (resume, abuse):
// the header and its Markdown tables on stdout, the problems, and with
// --json the run's header, the problems and the result.
func (b *bench) finishOwn(tables string, result any) int {
	b.bar.Done()
	b.run.Seconds = time.Since(b.start).Round(time.Millisecond).Seconds()
	b.run.LoadAvgEnd, _ = b.proc.ReadLoadAvg()
	m := b.run.Machine
	fmt.Fprintf(b.e.stdout, "\n%s — %d × %s, Linux %s, %s; load average %.2f → %.2f; %.0f s\n\n",
		b.run.Command, m.CPUs, m.Model, m.Kernel, m.GoVersion, m.LoadAvg, b.run.LoadAvgEnd, b.run.Seconds)
	fmt.Fprint(b.e.stdout, tables)
	code := 0
	if b.flags.jsonOut != "" {
		if err := results.WriteJSON(b.flags.jsonOut, struct {
			*results.Run
			Result any `json:"result"`
		}{b.run, result}); err != nil {
			fmt.Fprintln(b.e.stderr, "wsbench: write json:", err)
			code = 1
		}
	}
	if len(b.run.Problems) > 0 {
		fmt.Fprintln(b.e.stdout, "Problems (numbers near these are suspect):")
		fmt.Fprintln(b.e.stderr, "wsbench: problems during the run:")
		for _, p := range b.run.Problems {
			fmt.Fprintln(b.e.stdout, "  -", strings.SplitN(p, "\n", 2)[0])
			fmt.Fprintln(b.e.stderr, "  -", p)
		}
		code = 1
	}
	return code
}

// launcher is how a scenario package (bench/resume, bench/abuse) starts
// and stops the run's servers.
type launcher struct{ b *bench }

func (l launcher) Spec(design string, extra ...string) (server.Spec, error) {
	return l.b.serverSpec(design, extra...)
}

func (l launcher) Start(ctx context.Context, design string, extra ...string) (*server.Process, error) {
	return l.b.startServer(ctx, design, extra...)
}

func (l launcher) Stop(p *server.Process) { l.b.stopServer(p) }
