package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/report"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
)

// The abuse scenario: well-behaved clients doing protocol ping round trips
// at a modest rate, measured alone and then while an abuser works on the
// same gateway — one client flooding publishes (against --command-rate),
// or a connection storm (against --max-conns-per-ip and --max-conns).

// Abuse variants.
const (
	variantFlood = "flood"
	variantStorm = "storm"
	variantStall = "stall"
)

// Source addresses: the well-behaved clients, the flooder and the storm
// come from different loopback addresses, so per-IP limits see them apart.
const (
	politeIP = "127.0.0.1"
	floodIP  = "127.0.2.1"
)

// stormSource is the source address of a storm's i-th connection out of
// ips addresses: the first one gets two shares, the others one each, so
// that address passes --max-conns-per-ip while the total is still below
// --max-conns and both caps are hit.
func stormSource(i, ips int) string {
	k := 0
	if ips > 1 {
		k = max(0, i%(ips+1)-1)
	}
	return fmt.Sprintf("127.0.1.%d", k+1)
}

// abuseOpts are the abuse scenario's flags.
type abuseOpts struct {
	clients        int
	pingRate       float64
	phase, warmup  time.Duration
	variants       string
	commandRate    float64
	commandBurst   int
	floodChannel   string
	floodReconnect bool
	maxConnsPerIP  int
	maxConns       int
	stormConns     int
	stormIPs       int
	stormHold      time.Duration
	sample         time.Duration
	inProcess      bool
	gatewayArgs    string
	rounds         int
	stallConns     int
}

func (o *abuseOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.clients, "clients", 100, "well-behaved clients")
	fs.Float64Var(&o.pingRate, "ping-rate", 10, "ping round trips per second per well-behaved client")
	fs.DurationVar(&o.phase, "phase", 10*time.Second, "length of each measurement: unloaded, then under abuse")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "pinging before the unloaded measurement starts")
	fs.StringVar(&o.variants, "variants", variantFlood+","+variantStorm+","+variantStall, "abuse to run: flood (publishes as fast as possible), storm (a connection storm), stall (clients stalled mid-handshake and mid-frame)")
	fs.IntVar(&o.stallConns, "stall-conns", 3000, "stall: stalled clients, a third each half handshakes, half frames and one-byte-a-second tricklers")
	fs.Float64Var(&o.commandRate, "command-rate", 100, "flood: the gateway's --command-rate")
	fs.IntVar(&o.commandBurst, "command-burst", 50, "flood: the gateway's --command-burst")
	fs.StringVar(&o.floodChannel, "flood-channel", "flood", "flood: the channel flooded (nobody subscribes to it)")
	fs.BoolVar(&o.floodReconnect, "flood-reconnect", true, "flood: the flooder connects again as soon as it is closed (false: one connection, closed within milliseconds)")
	fs.IntVar(&o.maxConnsPerIP, "max-conns-per-ip", 1000, "storm: the gateway's --max-conns-per-ip")
	fs.IntVar(&o.maxConns, "max-conns", 3000, "storm: the gateway's --max-conns")
	fs.IntVar(&o.stormConns, "storm-conns", 5000, "storm: connections dialed at once in each round")
	fs.IntVar(&o.stormIPs, "storm-ips", 4, "storm: source addresses the storm comes from (127.0.1.1 …); the first sends two shares, the others one")
	fs.DurationVar(&o.stormHold, "storm-hold", time.Second, "storm: how long a round holds what it got before closing it and dialing again")
	fs.DurationVar(&o.sample, "sample", 100*time.Millisecond, "how often the gateway's /metrics is sampled while abused (a scrape costs the gateway 1.5–3 ms of CPU: at 25 ms that is 5–10 % of a core the unloaded windows do not pay)")
	fs.StringVar(&o.gatewayArgs, "gateway-args", "", "more wsgate serve flags for both variants, space-separated (e.g. \"--accept-rate 500\")")
	fs.BoolVar(&o.inProcess, "abuser-in-process", false, "run the abuser inside wsbench instead of its own process (\"wsbench abuser\")")
	fs.IntVar(&o.rounds, "rounds", 3, "split each phase into this many windows, alternating unloaded and under abuse (a fresh abuser each time; 1: one of each)")
}

func (o *abuseOpts) variantList() ([]string, error) {
	var out []string
	for v := range strings.SplitSeq(o.variants, ",") {
		switch v = strings.TrimSpace(v); v {
		case variantFlood, variantStorm, variantStall:
			out = append(out, v)
		default:
			return nil, fmt.Errorf("--variants: %q is not flood, storm or stall", v)
		}
	}
	switch {
	case o.clients < 1 || o.pingRate <= 0 || o.phase <= 0 || o.warmup < 0 || o.sample <= 0 || o.rounds < 1:
		return nil, errors.New("--clients, --ping-rate, --phase, --sample and --rounds must be positive")
	case o.commandRate <= 0 || o.commandBurst < 1:
		return nil, errors.New("--command-rate and --command-burst must be positive")
	case o.stallConns < 3:
		return nil, errors.New("--stall-conns must be at least 3 (a third of each kind)")
	case o.maxConnsPerIP < 1 || o.maxConns < 1 || o.stormConns < 1 || o.stormIPs < 1 || o.stormIPs > 254 || o.stormHold <= 0:
		return nil, errors.New("--max-conns-per-ip, --max-conns, --storm-conns, --storm-hold must be positive, 1 ≤ --storm-ips ≤ 254")
	}
	return out, nil
}

// abuseResult is what the abuse scenario measured (--json "result").
type abuseResult struct {
	Clients  int             `json:"clients"`
	PingRate float64         `json:"ping_rate"`
	PhaseS   float64         `json:"phase_s"`
	Rounds   int             `json:"rounds"`
	Variants []*abuseVariant `json:"variants"`
}

// abuseVariant is one gateway, measured unloaded and under one abuse.
type abuseVariant struct {
	Variant   string     `json:"variant"`
	Flags     []string   `json:"gateway_flags"`
	Unloaded  pingResult `json:"unloaded"`
	Loaded    pingResult `json:"loaded"`
	P99Ratio  float64    `json:"p99_ratio"` // loaded / unloaded
	PoliteCut int        `json:"well_behaved_closed"`
	PingsLost int64      `json:"pings_lost"`
	// MaxConnsOpen is the largest wsgate_conns_open sampled while loaded.
	MaxConnsOpen float64 `json:"max_conns_open"`
	Samples      int     `json:"metrics_samples"`
	// CPU, % of one core: the gateway unloaded and loaded, the abuser's
	// process (0 when it runs inside wsbench).
	GatewayCPUUnloaded float64     `json:"gateway_cpu_pct_unloaded"`
	GatewayCPULoaded   float64     `json:"gateway_cpu_pct_loaded"`
	AbuserCPU          float64     `json:"abuser_cpu_pct"`
	Flood              *floodStats `json:"flood,omitempty"`
	Storm              *stormStats `json:"storm,omitempty"`
	Stall              *stallStats `json:"stall,omitempty"`
}

// pingResult is the well-behaved clients' round trips in one phase.
type pingResult struct {
	Sent      int64               `json:"sent"`
	Answered  int64               `json:"answered"`
	Errors    int64               `json:"errors"`
	LatencyMs results.Percentiles `json:"latency_ms"`
}

// abuseCmd measures well-behaved clients' latency under abuse.
func abuseCmd(e env, args []string) int {
	fs := flag.NewFlagSet("abuse", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	c.register(fs)
	var o abuseOpts
	o.register(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	variants, err := o.variantList()
	if err != nil {
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
	res := &abuseResult{Clients: o.clients, PingRate: o.pingRate, PhaseS: o.phase.Seconds(), Rounds: o.rounds}
	for _, v := range variants {
		if ctx.Err() == nil {
			if r := b.runAbuse(ctx, o, v); r != nil {
				res.Variants = append(res.Variants, r)
			}
		}
	}
	return b.finishOwn(abuseTables(res, o), res)
}

// runAbuse measures one variant on a gateway of its own.
func (b *bench) runAbuse(ctx context.Context, o abuseOpts, variant string) *abuseVariant {
	var extra []string
	switch variant {
	case variantFlood:
		extra = []string{"--command-rate", strconv.FormatFloat(o.commandRate, 'f', -1, 64), "--command-burst", strconv.Itoa(o.commandBurst)}
	case variantStorm:
		extra = []string{"--max-conns-per-ip", strconv.Itoa(o.maxConnsPerIP), "--max-conns", strconv.Itoa(o.maxConns)}
	}
	extra = append(extra, strings.Fields(o.gatewayArgs)...)
	v := &abuseVariant{Variant: variant, Flags: extra}
	tag := "abuse " + variant
	p, err := b.startServer(ctx, results.Wsgate, extra...)
	if err != nil {
		return nil
	}
	defer b.stopServer(p)
	b.bar.Phase(fmt.Sprintf("%s: %d well-behaved clients", tag, o.clients), 0)
	pg, err := dialPingers(ctx, p.Addr, o.clients)
	if err != nil {
		b.run.Problem("%s: %v", tag, err)
		return nil
	}
	defer pg.close()
	pg.start(o.pingRate)
	sleepCtx(ctx, o.warmup)

	// Alternate unloaded and loaded windows (--rounds): on a shared
	// machine the load of other work drifts over tens of seconds, and
	// alternating puts both kinds of window under the same drift.
	window := o.phase / time.Duration(o.rounds)
	unloaded, loaded := &pingPhase{}, &pingPhase{}
	sc := scrape.New(p.DebugAddr)
	abuser := abuserArgs{Mode: variant, Addr: p.Addr, Channel: o.floodChannel, Reconnect: o.floodReconnect, Conns: o.stormConns, IPs: o.stormIPs, Hold: o.stormHold}
	if variant == variantStall {
		abuser.Conns = o.stallConns
	}
	for r := range o.rounds {
		if ctx.Err() != nil {
			break
		}
		round := fmt.Sprintf(" (round %d of %d)", r+1, o.rounds)
		b.bar.Phase(fmt.Sprintf("%s: unloaded, %v%s", tag, window, round), 0)
		cpu := b.cpuMeter(p.Pid())
		pg.measureInto(ctx, unloaded, window)
		v.GatewayCPUUnloaded += cpu() / float64(o.rounds)

		switch variant {
		case variantFlood:
			b.bar.Phase(fmt.Sprintf("%s: one client floods publishes, %v%s", tag, window, round), 0)
		case variantStorm:
			b.bar.Phase(fmt.Sprintf("%s: storms of %d connections, %v%s", tag, o.stormConns, window, round), 0)
		default:
			b.bar.Phase(fmt.Sprintf("%s: %d stalled clients, %v%s", tag, o.stallConns, window, round), 0)
		}
		// /metrics is sampled only while abused (scraping costs the
		// gateway CPU the unloaded windows must not pay).
		sampler := startSampler(sc, o.sample)
		a, err := b.startAbuser(abuser, o.inProcess)
		if err != nil {
			b.run.Problem("%s: %v", tag, err)
			sampler.stop()
			return nil
		}
		cpu = b.cpuMeter(p.Pid())
		abuserCPU := func() float64 { return 0 }
		if a.cmd != nil {
			abuserCPU = b.cpuMeter(a.cmd.Process.Pid)
		}
		pg.measureInto(ctx, loaded, window)
		v.GatewayCPULoaded += cpu() / float64(o.rounds)
		v.AbuserCPU += abuserCPU() / float64(o.rounds)
		var got abuseVariant
		got.Variant = variant
		if err := a.finish(&got); err != nil {
			b.run.Problem("%s: abuser: %v", tag, err)
		}
		v.Flood, v.Storm, v.Stall = got.Flood.mergeInto(v.Flood), got.Storm.mergeInto(v.Storm), got.Stall.mergeInto(v.Stall)
		maxOpen, samples := sampler.stop()
		v.MaxConnsOpen, v.Samples = max(v.MaxConnsOpen, maxOpen), v.Samples+samples
		// The abuser's last connections are still being closed: let the
		// gateway settle before the next unloaded window.
		waitFor(ctx, 5*time.Second, func() bool {
			m, err := sc.Metrics(ctx)
			return err == nil && m["wsgate_conns_open"] <= float64(o.clients)
		})
	}
	v.Unloaded, v.Loaded = unloaded.result(), loaded.result()
	v.GatewayCPUUnloaded, v.GatewayCPULoaded, v.AbuserCPU = round3(v.GatewayCPUUnloaded), round3(v.GatewayCPULoaded), round3(v.AbuserCPU)
	v.PingsLost = pg.stop(5 * time.Second)
	v.PoliteCut = pg.pool.Stats().Closed
	if v.Unloaded.LatencyMs.P99 > 0 {
		v.P99Ratio = round3(v.Loaded.LatencyMs.P99 / v.Unloaded.LatencyMs.P99)
	}
	b.checkAbuse(tag, o, v, p)
	return v
}

// checkAbuse records what should not have happened.
func (b *bench) checkAbuse(tag string, o abuseOpts, v *abuseVariant, p *server.Process) {
	if v.PoliteCut > 0 {
		b.run.Problem("%s: the gateway closed %d well-behaved clients", tag, v.PoliteCut)
	}
	if n := v.Unloaded.Errors + v.Loaded.Errors; n > 0 {
		b.run.Problem("%s: %d pings answered with an error", tag, n)
	}
	if v.PingsLost > 0 {
		b.run.Problem("%s: %d pings never answered", tag, v.PingsLost)
	}
	if f := v.Flood; f != nil {
		if f.Connections == 0 || f.Closes[int(CloseRateLimitedCode)] == 0 {
			b.run.Problem("%s: the flooder was never closed with %d: closes %v", tag, CloseRateLimitedCode, f.Closes)
		}
		if f.RateLimited == 0 {
			b.run.Problem("%s: the flooder never got error 107", tag)
		}
	}
	if s := v.Storm; s != nil {
		if v.MaxConnsOpen > float64(o.maxConns) {
			b.run.Problem("%s: wsgate_conns_open reached %.0f, over --max-conns %d", tag, v.MaxConnsOpen, o.maxConns)
		}
		if s.MaxPerIP > o.maxConnsPerIP {
			b.run.Problem("%s: %d connections from one address were upgraded at once, over --max-conns-per-ip %d", tag, s.MaxPerIP, o.maxConnsPerIP)
		}
	}
	if st := v.Stall; st != nil {
		opened := 0
		for _, n := range st.Opened {
			opened += n
		}
		if want := o.stallConns * o.rounds; opened < want {
			b.run.Problem("%s: %d of %d stalled clients opened (%s)", tag, opened, want, st.FirstError)
		}
	}
	if v.Samples == 0 {
		b.run.Problem("%s: /metrics never answered while loaded", tag)
	}
	if p.Exited() {
		b.run.Problem("%s: %v", tag, p.ExitError())
	}
}

// cpuMeter starts measuring pid's CPU time; the function it returns gives
// the % of one core used since (0 when /proc could not be read).
func (b *bench) cpuMeter(pid int) func() float64 {
	t0, err0 := b.proc.ReadCPU(pid)
	start := time.Now()
	return func() float64 {
		t1, err1 := b.proc.ReadCPU(pid)
		if err0 != nil || err1 != nil {
			return 0
		}
		return round3(100 * (t1 - t0).Seconds() / time.Since(start).Seconds())
	}
}

// abuserArgs tell "wsbench abuser" what to do.
type abuserArgs struct {
	Mode      string        // flood or storm
	Addr      string        // the gateway
	Channel   string        // flood
	Reconnect bool          // flood
	Conns     int           // storm
	IPs       int           // storm
	Hold      time.Duration // storm
}

func (a abuserArgs) argv() []string {
	return []string{"--mode", a.Mode, "--addr", a.Addr, "--channel", a.Channel, "--reconnect=" + strconv.FormatBool(a.Reconnect),
		"--conns", strconv.Itoa(a.Conns), "--ips", strconv.Itoa(a.IPs), "--hold", a.Hold.String()}
}

// abuserProc is a running abuser: "wsbench abuser" in its own process, or
// goroutines of this one.
type abuserProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *bytes.Buffer
	local  func(v *abuseVariant) // in process: stop and record
}

// startAbuser starts the abuse; it is under way when this returns.
func (b *bench) startAbuser(a abuserArgs, inProcess bool) (*abuserProc, error) {
	if inProcess {
		switch a.Mode {
		case variantFlood:
			f := startFlood(a.Addr, a.Channel, a.Reconnect)
			return &abuserProc{local: func(v *abuseVariant) { v.Flood = f.stop() }}, nil
		case variantStall:
			s := startStall(a.Addr, a.Conns)
			return &abuserProc{local: func(v *abuseVariant) { v.Stall = s.stop() }}, nil
		default:
			s := startStorm(a.Addr, a.Conns, a.IPs, a.Hold)
			return &abuserProc{local: func(v *abuseVariant) { v.Storm = s.stop() }}, nil
		}
	}
	cmd := exec.Command(b.self, append([]string{"abuser"}, a.argv()...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &abuserProc{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s abuser: %w", b.self, err)
	}
	if line, err := p.stdout.ReadString('\n'); err != nil || !strings.Contains(line, "started") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("abuser did not start (%q, %v): %s", line, err, p.stderr)
	}
	return p, nil
}

// finish stops the abuse and puts what the abuser saw into v.
func (p *abuserProc) finish(v *abuseVariant) error {
	if p.local != nil {
		p.local(v)
		return nil
	}
	_ = p.stdin.Close()
	line, rerr := p.stdout.ReadString('\n')
	werr := p.cmd.Wait()
	if rerr != nil || werr != nil {
		return fmt.Errorf("%v %v: %s", rerr, werr, p.stderr)
	}
	switch v.Variant {
	case variantFlood:
		v.Flood = &floodStats{}
		return decodeLine(line, v.Flood)
	case variantStall:
		v.Stall = &stallStats{}
		return decodeLine(line, v.Stall)
	default:
		v.Storm = &stormStats{}
		return decodeLine(line, v.Storm)
	}
}

// abuserCmd is "wsbench abuser": one abuse against a gateway until stdin
// closes or SIGTERM, then what it saw as one JSON line.
func abuserCmd(e env, args []string) int {
	fs := flag.NewFlagSet("abuser", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var a abuserArgs
	fs.StringVar(&a.Mode, "mode", variantFlood, "flood: one client publishing as fast as it can; storm: connection storms; stall: stalled clients")
	fs.StringVar(&a.Addr, "addr", "", "the gateway's address")
	fs.StringVar(&a.Channel, "channel", "flood", "flood: the channel")
	fs.BoolVar(&a.Reconnect, "reconnect", true, "flood: connect again as soon as the gateway closed the connection")
	fs.IntVar(&a.Conns, "conns", 5000, "storm: connections per round; stall: stalled clients")
	fs.IntVar(&a.IPs, "ips", 4, "storm: source addresses (127.0.1.1 …)")
	fs.DurationVar(&a.Hold, "hold", time.Second, "storm: how long a round holds its connections")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if a.Addr == "" || (a.Mode != variantFlood && a.Mode != variantStorm && a.Mode != variantStall) || a.Conns < 1 || a.IPs < 1 || a.IPs > 254 {
		fmt.Fprintln(e.stderr, "wsbench abuser: need --addr, --mode flood|storm|stall, positive --conns, 1 ≤ --ips ≤ 254")
		return 2
	}
	if _, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	}
	ctx, stop := signalContext()
	defer stop()
	var finish func() any
	switch a.Mode {
	case variantFlood:
		f := startFlood(a.Addr, a.Channel, a.Reconnect)
		finish = func() any { return f.stop() }
	case variantStall:
		s := startStall(a.Addr, a.Conns)
		finish = func() any { return s.stop() }
	default:
		s := startStorm(a.Addr, a.Conns, a.IPs, a.Hold)
		finish = func() any { return s.stop() }
	}
	fmt.Fprintln(e.stdout, `{"event":"started"}`)
	eof := make(chan struct{})
	if e.stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, e.stdin)
			close(eof)
		}()
	}
	select {
	case <-eof:
	case <-ctx.Done():
	}
	if err := json.NewEncoder(e.stdout).Encode(finish()); err != nil {
		e.log.Error("abuser", "err", err)
		return 1
	}
	return 0
}

// CloseRateLimitedCode is the close code of a connection over its command
// rate (codec/README.md §8).
const CloseRateLimitedCode = 4029

// pingers are the well-behaved clients: each sends a protocol ping now and
// then and times the reply.
type pingers struct {
	pool  *loadclient.Pool
	conns []*loadclient.Conn
	// sentAt holds each connection's unanswered pings' send times (Unix
	// ns) by id mod pingSlots.
	sentAt [][pingSlots]atomic.Int64
	cur    atomic.Pointer[pingPhase]
	// lost counts pings never answered: overwritten in their slot (64
	// newer pings were sent first), or still unanswered after stop.
	lost atomic.Int64

	stopCh, done chan struct{}
	stopOnce     sync.Once
}

// pingSlots bounds a connection's unanswered pings that can be timed.
const pingSlots = 64

type pingPhase struct {
	h                    hist.Hist
	sent, answered, errs atomic.Int64
}

func dialPingers(ctx context.Context, addr string, n int) (*pingers, error) {
	pg := &pingers{sentAt: make([][pingSlots]atomic.Int64, n)}
	pg.cur.Store(&pingPhase{})
	pool, err := loadclient.Dial(ctx, loadclient.Config{Addr: addr, Path: drive.Path, Conns: n, DialsInFlight: 100,
		SourceIPs: []string{politeIP}, OnMessage: pg.onMessage})
	if err != nil {
		return nil, err
	}
	pg.pool, pg.conns = pool, pool.Conns()
	if len(pg.conns) != n {
		_ = pool.Close()
		return nil, fmt.Errorf("%d of %d well-behaved clients connected: %s", len(pg.conns), n, pool.Stats().FirstError)
	}
	return pg, nil
}

func (pg *pingers) onMessage(c *loadclient.Conn, _ byte, payload []byte) {
	now := time.Now()
	r, err := wire.ParsePush(payload)
	if err != nil || !r.IsReply() {
		return
	}
	ph := pg.cur.Load()
	if r.HasError {
		ph.errs.Add(1)
	}
	sent := pg.sentAt[c.Index()][r.ID%pingSlots].Swap(0)
	if sent == 0 {
		return
	}
	ph.h.Record(now.Sub(time.Unix(0, sent)))
	ph.answered.Add(1)
}

// start sends rate pings per second per connection, spread evenly over
// the connections, until stop.
func (pg *pingers) start(rate float64) {
	pg.stopCh, pg.done = make(chan struct{}), make(chan struct{})
	interval := time.Duration(float64(time.Second) / (rate * float64(len(pg.conns))))
	go func() {
		defer close(pg.done)
		ids := make([]uint32, len(pg.conns))
		begin := time.Now()
		for k := 0; ; {
			due := int(time.Since(begin) / interval)
			for ; k <= due; k++ {
				i := k % len(pg.conns)
				ids[i]++
				if ids[i] == 0 {
					ids[i] = 1
				}
				frame, _ := codec.AppendCommand(nil, codec.Msgpack, &codec.Command{ID: ids[i], Cmd: codec.CmdPing})
				if pg.sentAt[i][ids[i]%pingSlots].Swap(time.Now().UnixNano()) != 0 {
					pg.lost.Add(1)
				}
				if pg.conns[i].Send(loadclient.OpBinary, frame) == nil {
					pg.cur.Load().sent.Add(1)
				}
			}
			select {
			case <-pg.stopCh:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
}

// measureInto records the round trips of the next d into ph (which may
// already hold earlier windows').
func (pg *pingers) measureInto(ctx context.Context, ph *pingPhase, d time.Duration) {
	pg.cur.Store(ph)
	sleepCtx(ctx, d)
	pg.cur.Store(&pingPhase{})
}

// result summarizes a phase's round trips.
func (ph *pingPhase) result() pingResult {
	q := ph.h.Percentiles(50, 90, 99, 99.9)
	return pingResult{Sent: ph.sent.Load(), Answered: ph.answered.Load(), Errors: ph.errs.Load(),
		LatencyMs: results.Percentiles{P50: durMs(q[0]), P90: durMs(q[1]), P99: durMs(q[2]), P999: durMs(q[3]), Max: durMs(ph.h.Max())}}
}

// stop stops pinging, waits up to grace for the pings in flight and
// returns the pings never answered.
func (pg *pingers) stop(grace time.Duration) int64 {
	if pg.stopCh == nil {
		return 0
	}
	pg.stopOnce.Do(func() { close(pg.stopCh) })
	<-pg.done
	unanswered := func() int64 {
		var n int64
		for i := range pg.sentAt {
			for j := range pg.sentAt[i] {
				if pg.sentAt[i][j].Load() != 0 {
					n++
				}
			}
		}
		return n
	}
	waitFor(context.Background(), grace, func() bool { return unanswered() == 0 })
	return pg.lost.Load() + unanswered()
}

func (pg *pingers) close() {
	pg.stop(0)
	_ = pg.pool.Close()
}

// sampler polls /metrics for the largest wsgate_conns_open.
type sampler struct {
	stopCh chan struct{}
	done   chan struct{}
	max    float64
	n      int
}

func startSampler(sc *scrape.Client, every time.Duration) *sampler {
	s := &sampler{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			m, err := sc.Metrics(ctx)
			cancel()
			if err == nil {
				s.n++
				s.max = max(s.max, m["wsgate_conns_open"])
			}
			select {
			case <-s.stopCh:
				return
			case <-time.After(every):
			}
		}
	}()
	return s
}

func (s *sampler) stop() (maxOpen float64, samples int) {
	close(s.stopCh)
	<-s.done
	return s.max, s.n
}

// floodStats is what the flooding client saw.
type floodStats struct {
	Connections int `json:"connections"`
	// Publishes sent, accepted (a reply without error) and refused with 107.
	Sent        int64       `json:"sent"`
	Accepted    int64       `json:"accepted"`
	RateLimited int64       `json:"rate_limited"`
	OtherErrors int64       `json:"other_errors"`
	Closes      map[int]int `json:"closes"`
	// Connection's first publish → its close, per connection.
	ClosedAfterMs results.Percentiles `json:"closed_after_ms"`
	FirstClosedMs float64             `json:"first_closed_after_ms"`
	// Publishes sent on a connection before it was closed (median).
	SentPerConn float64 `json:"sent_per_connection"`
	FirstError  string  `json:"first_error,omitempty"`
}

// flood is one client flooding publishes as fast as it can (whole
// batches of frames written back to back: the abuser spends nothing per
// frame), with reconnect as soon as it is closed, until stopped.
type flood struct {
	addr, channel string
	reconnect     bool
	stopFlag      atomic.Bool
	done          chan *floodStats
}

func startFlood(addr, channel string, reconnect bool) *flood {
	f := &flood{addr: addr, channel: channel, reconnect: reconnect, done: make(chan *floodStats, 1)}
	go func() { f.done <- f.run() }()
	return f
}

func (f *flood) stop() *floodStats {
	f.stopFlag.Store(true)
	return <-f.done
}

func (f *flood) run() *floodStats {
	st := &floodStats{Closes: map[int]int{}}
	frame := maskedFrame(0x2, wire.Publish(1, f.channel, wire.NewData(32)))
	batch := bytes.Repeat(frame, 256)
	var after []time.Duration
	var perConn []float64
	for !f.stopFlag.Load() {
		conn, br, status, err := wsDial(f.addr, floodIP)
		if err != nil || status != "101" {
			if st.FirstError == "" {
				st.FirstError = fmt.Sprintf("status %q: %v", status, err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		st.Connections++
		r := f.flood(conn, br, batch, len(frame))
		st.Sent += r.sent
		st.Accepted += r.ok
		st.RateLimited += r.limited
		st.OtherErrors += r.other
		st.Closes[r.code]++
		if r.closedAfter > 0 {
			after = append(after, r.closedAfter)
			perConn = append(perConn, float64(r.sent))
			if st.FirstClosedMs == 0 {
				st.FirstClosedMs = durMs(r.closedAfter)
			}
		}
		if !f.reconnect {
			for !f.stopFlag.Load() {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	if len(after) > 0 {
		q := loadclient.Percentiles(after, 50, 90, 99, 100)
		st.ClosedAfterMs = results.Percentiles{P50: durMs(q[0]), P90: durMs(q[1]), P99: durMs(q[2]), Max: durMs(q[3])}
		slices.Sort(perConn)
		st.SentPerConn = perConn[len(perConn)/2]
	}
	return st
}

// floodConn is what one flooding connection saw.
type floodConn struct {
	sent               int64 // frames written (whole ones)
	ok, limited, other int64 // replies
	code               int   // close code (1006: none)
	closedAfter        time.Duration
}

// flood writes batch (frames of frameLen bytes) to conn back to back
// until the gateway closes it (or stop), reading replies and the close
// frame on the side.
func (f *flood) flood(conn net.Conn, br *bufio.Reader, batch []byte, frameLen int) floodConn {
	var r floodConn
	r.code = 1006
	readDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(readDone)
		for {
			op, payload, err := readServerFrame(br)
			if err != nil {
				return
			}
			switch op {
			case 0x8: // close
				if len(payload) >= 2 {
					r.code = int(payload[0])<<8 | int(payload[1])
				} else {
					r.code = 1005
				}
				r.closedAfter = time.Since(start)
				return
			case 0x1, 0x2:
				var fr serverFrame
				switch {
				case decodeFrame(payload, &fr) != nil || fr.Type != codec.TypeReply:
				case fr.Error == nil:
					r.ok++
				case fr.Error.Code == int(codec.CodeRateLimited):
					r.limited++
				default:
					r.other++
				}
			}
		}
	}()
	var written int64
	off := 0 // into batch: a write cut short by the deadline goes on mid-frame
write:
	for !f.stopFlag.Load() {
		// A deadline, so that stop is seen while the socket is full.
		_ = conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := conn.Write(batch[off:])
		written += int64(n)
		off = (off + n) % len(batch)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			break
		}
		select {
		case <-readDone:
			break write
		default:
		}
	}
	r.sent = written / int64(frameLen)
	select {
	case <-readDone:
	case <-time.After(time.Second):
	}
	_ = conn.Close()
	<-readDone
	return r
}

// maskedFrame is one client frame (FIN, masked) carrying payload.
func maskedFrame(op byte, payload []byte) []byte {
	key := [4]byte{0x5a, 0xc3, 0x17, 0x8e}
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// readServerFrame reads one frame: its opcode and (unmasked) payload.
func readServerFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	if n >= 126 {
		ext := make([]byte, map[bool]int{true: 2, false: 8}[n == 126])
		if _, err := io.ReadFull(br, ext); err != nil {
			return 0, nil, err
		}
		n = 0
		for _, c := range ext {
			n = n<<8 | uint64(c)
		}
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(br, key[:]); err != nil {
			return 0, nil, err
		}
	}
	if n > 16<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, payload, nil
}

// decodeFrame decodes a server frame (MessagePack).
func decodeFrame(payload []byte, f *serverFrame) error {
	return msgpack.Unmarshal(payload, f)
}

// stormStats is what the connection storm saw, over its rounds.
type stormStats struct {
	Rounds   int `json:"rounds"`
	Dialed   int `json:"dialed"`
	Accepted int `json:"accepted"` // 101
	// Refused: by HTTP status (429 per-IP, 503 total), "other" for dials
	// that failed without a status (timeouts, resets).
	Refused    map[string]int `json:"refused"`
	FirstError string         `json:"first_error,omitempty"`
	// MaxPerIP is the most upgraded connections one source address held
	// at once; MaxAccepted the most the storm held in one round.
	MaxPerIP    int `json:"max_per_ip"`
	MaxAccepted int `json:"max_accepted_in_a_round"`
	// Per round: accepted, then refusals.
	PerRound []stormRound `json:"per_round"`
}

type stormRound struct {
	Accepted int            `json:"accepted"`
	Refused  map[string]int `json:"refused"`
	DialMs   float64        `json:"dial_ms"`
}

// storm dials conns connections at once from ips source addresses, holds
// the upgraded ones for hold, closes them all and starts again, until
// stopped.
type storm struct {
	addr     string
	conns    int
	ips      int
	hold     time.Duration
	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan *stormStats
}

func startStorm(addr string, conns, ips int, hold time.Duration) *storm {
	s := &storm{addr: addr, conns: conns, ips: ips, hold: hold, stopCh: make(chan struct{}), done: make(chan *stormStats, 1)}
	go func() { s.done <- s.run() }()
	return s
}

func (s *storm) stop() *stormStats {
	s.stopOnce.Do(func() { close(s.stopCh) })
	return <-s.done
}

func (s *storm) stopped() bool {
	select {
	case <-s.stopCh:
		return true
	default:
		return false
	}
}

func (s *storm) run() *stormStats {
	st := &stormStats{Refused: map[string]int{}}
	for !s.stopped() {
		r, held, firstErr := s.round()
		st.Rounds++
		st.Dialed += s.conns
		st.Accepted += r.Accepted
		st.MaxAccepted = max(st.MaxAccepted, r.Accepted)
		for k, v := range r.Refused {
			st.Refused[k] += v
		}
		if st.FirstError == "" {
			st.FirstError = firstErr
		}
		perIP := map[string]int{}
		for _, c := range held {
			perIP[c.LocalAddr().(*net.TCPAddr).IP.String()]++
		}
		for _, n := range perIP {
			st.MaxPerIP = max(st.MaxPerIP, n)
		}
		st.PerRound = append(st.PerRound, r)
		select {
		case <-s.stopCh:
		case <-time.After(s.hold):
		}
		for _, c := range held {
			_ = c.Close()
		}
		select {
		case <-s.stopCh:
		case <-time.After(200 * time.Millisecond): // let the gateway see the closes
		}
	}
	return st
}

// round dials every connection at once and returns the upgraded ones.
func (s *storm) round() (stormRound, []net.Conn, string) {
	type outcome struct {
		conn   net.Conn
		status string
		err    error
	}
	out := make([]outcome, s.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range s.conns {
		wg.Go(func() {
			c, _, status, err := wsDial(s.addr, stormSource(i, s.ips))
			out[i] = outcome{c, status, err}
		})
	}
	wg.Wait()
	r := stormRound{Refused: map[string]int{}, DialMs: msSince(start)}
	var held []net.Conn
	var firstErr string
	for _, o := range out {
		switch {
		case o.err != nil:
			r.Refused["other"]++
			if firstErr == "" {
				firstErr = o.err.Error()
			}
		case o.status == "101":
			r.Accepted++
			held = append(held, o.conn)
		default:
			r.Refused[o.status]++
		}
	}
	return r, held, firstErr
}

// wsDial connects from src, sends an upgrade request and reads the
// response's status; the connection (and its reader, which may hold the
// first frames) is returned open only for a 101.
func wsDial(addr, src string) (net.Conn, *bufio.Reader, string, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)},
		Control: func(_, _ string, rc syscall.RawConn) error {
			// The port is picked per 4-tuple at connect, not per address at
			// bind: storms reuse ports that linger in TIME_WAIT elsewhere.
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return errors.Join(err, serr)
		}}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return nil, nil, "", err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET " + drive.Path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	br := bufio.NewReader(c)
	if _, err := c.Write([]byte(req)); err != nil {
		// A refused connection may be closed before our request is
		// written: its status may still be readable.
		status, rerr := readStatus(br)
		_ = c.Close()
		if rerr == nil {
			return nil, nil, status, nil
		}
		return nil, nil, "", err
	}
	status, err := readStatus(br)
	if err != nil || status != "101" {
		_ = c.Close()
		return nil, nil, status, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, br, status, nil
}

// readStatus reads a response head and returns its status code.
func readStatus(br *bufio.Reader) (string, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return "", err
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return "", fmt.Errorf("bad status line %q", line)
	}
	if _, err := tp.ReadMIMEHeader(); err != nil {
		return "", err
	}
	return f[1], nil
}

func abuseTables(r *abuseResult, o abuseOpts) string {
	t := &mdTable{
		title: fmt.Sprintf("Abuse: %s well-behaved clients, %g protocol pings/s each, latency over %v unloaded and %v under abuse%s",
			report.Num(float64(r.Clients), 0), r.PingRate, o.phase, o.phase, abuseRoundsNote(r.Rounds)),
		head: []string{"abuse", "gateway flags", "unloaded p50 / p99 / max (ms)", "under abuse p50 / p99 / max (ms)", "p99 loaded / unloaded", "pings sent / answered (unloaded; loaded)", "gateway CPU unloaded → loaded", "abuser CPU"},
	}
	for _, v := range r.Variants {
		what := map[string]string{variantFlood: "one client floods publishes", variantStorm: fmt.Sprintf("storms of %s connections", report.Num(float64(o.stormConns), 0)),
			variantStall: fmt.Sprintf("%s stalled clients", report.Num(float64(o.stallConns), 0))}[v.Variant]
		t.add(what, "`"+strings.Join(v.Flags, " ")+"`",
			fms(v.Unloaded.LatencyMs.P50)+" / "+fms(v.Unloaded.LatencyMs.P99)+" / "+fms(v.Unloaded.LatencyMs.Max),
			fms(v.Loaded.LatencyMs.P50)+" / "+fms(v.Loaded.LatencyMs.P99)+" / "+fms(v.Loaded.LatencyMs.Max),
			report.Num(v.P99Ratio, 2)+"×",
			report.Num(float64(v.Unloaded.Sent), 0)+" / "+report.Num(float64(v.Unloaded.Answered), 0)+"; "+report.Num(float64(v.Loaded.Sent), 0)+" / "+report.Num(float64(v.Loaded.Answered), 0),
			report.Num(v.GatewayCPUUnloaded, 0)+"% → "+report.Num(v.GatewayCPULoaded, 0)+"%", report.Num(v.AbuserCPU, 0)+"%")
	}
	t.note = "Latency: a `ping` command's send to its reply, at the client. The client, the abuser (its own process) and the gateway share 2 cores. Answered: replies that arrived within the phase. CPU: utime+stime over the phase, % of one core (the abuser's: its process). Target: p99 under abuse within 2× of unloaded."
	out := t.String()
	for _, v := range r.Variants {
		if f := v.Flood; f != nil {
			ft := &mdTable{
				title: "Flood: one client publishing as fast as it can" + map[bool]string{true: ", reconnecting at once when closed", false: ""}[o.floodReconnect],
				head:  []string{"connections", "publish frames written", "accepted", "error 107", "closes", "closed after (first; p50 / p99 ms)", "frames written per connection (median)"},
			}
			var closes []string
			for code, n := range f.Closes {
				closes = append(closes, fmt.Sprintf("%d × %d", n, code))
			}
			sort.Strings(closes)
			ft.add(report.Num(float64(f.Connections), 0), report.Num(float64(f.Sent), 0), report.Num(float64(f.Accepted), 0), report.Num(float64(f.RateLimited), 0),
				strings.Join(closes, ", "), fms(f.FirstClosedMs)+"; "+fms(f.ClosedAfterMs.P50)+" / "+fms(f.ClosedAfterMs.P99), report.Num(f.SentPerConn, 0))
			ft.note = fmt.Sprintf("Closed after: from a connection's first write to the close frame it received. Written: whole frames the kernel took (the socket buffers on both ends); the gateway acts on about %d commands per connection (%d accepted, %d refused with 107, the next refusal closes with 4029) and reads and discards the rest while it closes.",
				2*o.commandBurst+1, o.commandBurst, o.commandBurst)
			out += ft.String()
		}
		if s := v.Storm; s != nil {
			st := &mdTable{
				title: fmt.Sprintf("Storm: %s connections at once from %d addresses, held %v, again, for %v", report.Num(float64(o.stormConns), 0), o.stormIPs, o.stormHold, o.phase),
				head:  []string{"rounds", "dialed", "accepted (101)", "429 (per IP)", "503 (total)", "other failures", "most held from one address", "max wsgate_conns_open (samples)", "caps held"},
			}
			held := v.MaxConnsOpen <= float64(o.maxConns) && s.MaxPerIP <= o.maxConnsPerIP && v.Samples > 0
			st.add(report.Num(float64(s.Rounds), 0), report.Num(float64(s.Dialed), 0), report.Num(float64(s.Accepted), 0), report.Num(float64(s.Refused["429"]), 0),
				report.Num(float64(s.Refused["503"]), 0), report.Num(float64(s.Refused["other"]), 0),
				report.Num(float64(s.MaxPerIP), 0)+" (cap "+report.Num(float64(o.maxConnsPerIP), 0)+")",
				report.Num(v.MaxConnsOpen, 0)+" (cap "+report.Num(float64(o.maxConns), 0)+"; "+report.Num(float64(v.Samples), 0)+")",
				map[bool]string{true: "yes", false: "**no**"}[held])
			var per []string
			for _, r := range s.PerRound {
				per = append(per, fmt.Sprintf("%d/%d/%d", r.Accepted, r.Refused["429"], r.Refused["503"]))
			}
			st.note = fmt.Sprintf("wsgate_conns_open (every connection the gateway holds, the %d well-behaved ones and handshakes in progress included) sampled from /metrics every %v. Per round accepted/429/503: %s.",
				r.Clients, o.sample, strings.Join(per, ", "))
			if s.FirstError != "" {
				st.note += " First failure without a status: " + s.FirstError + "."
			}
			out += st.String()
		}
		if s := v.Stall; s != nil {
			st := &mdTable{
				title: fmt.Sprintf("Stall: %s stalled clients held through each abused window", report.Num(float64(o.stallConns), 0)),
				head:  []string{"kind", "opened", "closed by the gateway within the window"},
			}
			for _, k := range []string{stallHandshake, stallFrame, stallTrickle} {
				st.add(strings.ReplaceAll(k, "_", " "), report.Num(float64(s.Opened[k]), 0), report.Num(float64(s.ClosedByServer[k]), 0))
			}
			st.note = fmt.Sprintf("Opened over %d windows, a fresh set each, in up to %.0f ms (64 at a time) before the window starts.", r.Rounds, s.OpenMs)
			if s.FirstError != "" {
				st.note += " First failure: " + s.FirstError + "."
			}
			out += st.String()
		}
	}
	return out
}

// mergeInto adds one round's flood stats to the total so far (nil: none).
func (f *floodStats) mergeInto(total *floodStats) *floodStats {
	switch {
	case f == nil:
		return total
	case total == nil:
		return f
	}
	total.Connections += f.Connections
	total.Sent += f.Sent
	total.Accepted += f.Accepted
	total.RateLimited += f.RateLimited
	total.OtherErrors += f.OtherErrors
	if total.Closes == nil {
		total.Closes = map[int]int{}
	}
	for code, n := range f.Closes {
		total.Closes[code] += n
	}
	// Per-connection figures: the worse of the rounds.
	total.ClosedAfterMs.P50 = max(total.ClosedAfterMs.P50, f.ClosedAfterMs.P50)
	total.ClosedAfterMs.P90 = max(total.ClosedAfterMs.P90, f.ClosedAfterMs.P90)
	total.ClosedAfterMs.P99 = max(total.ClosedAfterMs.P99, f.ClosedAfterMs.P99)
	total.ClosedAfterMs.P999 = max(total.ClosedAfterMs.P999, f.ClosedAfterMs.P999)
	total.ClosedAfterMs.Max = max(total.ClosedAfterMs.Max, f.ClosedAfterMs.Max)
	total.FirstClosedMs = max(total.FirstClosedMs, f.FirstClosedMs)
	total.SentPerConn = max(total.SentPerConn, f.SentPerConn)
	if total.FirstError == "" {
		total.FirstError = f.FirstError
	}
	return total
}

// mergeInto adds one abuser's storm stats to the total so far (nil: none).
func (s *stormStats) mergeInto(total *stormStats) *stormStats {
	switch {
	case s == nil:
		return total
	case total == nil:
		return s
	}
	total.Rounds += s.Rounds
	total.Dialed += s.Dialed
	total.Accepted += s.Accepted
	if total.Refused == nil {
		total.Refused = map[string]int{}
	}
	for k, n := range s.Refused {
		total.Refused[k] += n
	}
	if total.FirstError == "" {
		total.FirstError = s.FirstError
	}
	total.MaxPerIP = max(total.MaxPerIP, s.MaxPerIP)
	total.MaxAccepted = max(total.MaxAccepted, s.MaxAccepted)
	total.PerRound = append(total.PerRound, s.PerRound...)
	return total
}

// abuseRoundsNote says how the windows were interleaved.
func abuseRoundsNote(rounds int) string {
	if rounds <= 1 {
		return ""
	}
	return fmt.Sprintf(", alternating in %d rounds", rounds)
}

// serverFrame is what a client decodes of a server frame.
type serverFrame struct {
	Type      string `msgpack:"type"`
	ID        uint64 `msgpack:"id"`
	Channel   string `msgpack:"channel"`
	Offset    uint64 `msgpack:"offset"`
	Epoch     string `msgpack:"epoch"`
	Recovered *bool  `msgpack:"recovered"`
	Reason    string `msgpack:"reason"`
	Error     *struct {
		Code    int    `msgpack:"code"`
		Message string `msgpack:"message"`
	} `msgpack:"error"`
}

func (f *serverFrame) errText() string {
	return fmt.Sprintf("error %d: %s", f.Error.Code, f.Error.Message)
}

func durMs(d time.Duration) float64 { return round3(d.Seconds() * 1000) }

func msSince(t time.Time) float64 { return durMs(time.Since(t)) }

// waitFor polls cond every 5 ms until it holds, timeout passes or ctx
// ends; it reports whether cond held.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// mdTable is a Markdown table with a title and a note under it.
type mdTable struct {
	title string
	head  []string
	rows  [][]string
	note  string
}

func (t *mdTable) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *mdTable) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**\n\n| %s |\n|", t.title, strings.Join(t.head, " | "))
	for i := range t.head {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
	}
	if t.note != "" {
		b.WriteString("\n" + t.note + "\n")
	}
	return b.String() + "\n"
}

// fms renders a latency in ms with a precision fitting its size.
func fms(v float64) string {
	switch {
	case v >= 100:
		return report.Num(v, 0)
	case v >= 10:
		return report.Num(v, 1)
	}
	return report.Num(v, 2)
}
