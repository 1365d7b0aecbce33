package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/floor"
	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/wait"
	"github.com/wsgate/wsgate/bench/naive"
)

// Publishing modes.
const (
	modeRate      = "rate"
	modeBurst     = "burst"
	modeCoalesced = "burst-coalesced" // floor only
)

// fanoutOpts are the fanout scenario's flags.
type fanoutOpts struct {
	subs          int
	channels      int
	rate          float64
	duration      time.Duration
	burst         int
	bursts        int
	burstPause    time.Duration
	modes         string
	floor         bool
	dialsInFlight int
	stall         time.Duration
	profileDir    string
	// compression (the flag) runs every design twice with the JSON
	// document as payload: plain, then with permessage-deflate
	// offered; the naive design a third time compressing per
	// connection. document, deflate and perConn are those runs' settings.
	compression                bool
	document, deflate, perConn bool
}

func (o *fanoutOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.subs, "subs", 10000, "subscriber connections")
	fs.IntVar(&o.channels, "channels", 1, "channels the subscribers are spread over (1: all on one)")
	fs.Float64Var(&o.rate, "rate", 4, "rate mode: publish rounds per second; each round publishes one message on every channel")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "rate mode: how long to publish")
	fs.IntVar(&o.burst, "burst", 20, "burst mode: messages published back to back on every channel")
	fs.IntVar(&o.bursts, "bursts", 5, "burst mode: bursts, each after the previous one was delivered")
	fs.DurationVar(&o.burstPause, "burst-pause", 200*time.Millisecond, "burst mode: pause between bursts")
	fs.StringVar(&o.modes, "modes", "rate,burst", "publishing modes to run: rate, burst")
	fs.BoolVar(&o.floor, "floor", true, "also measure the floor: a bare write(2) loop over as many sockets (single-channel layout)")
	fs.IntVar(&o.dialsInFlight, "dials-in-flight", 500, "concurrent connects+handshakes")
	fs.DurationVar(&o.stall, "stall", 5*time.Second, "give up waiting for deliveries after this long without one")
	fs.BoolVar(&o.compression, "compression", false, "publish the JSON document of bench/harness/wire/document.json and run each design twice: plain, then with subscribers offering permessage-deflate (naive accepts it as gorilla's EnableCompression does and compresses each publication once, as a PreparedMessage); "+
		"naive runs a third time compressing per connection (wsbench naive --compression-mode per-connection: one deflate per subscriber per message, as gorilla's users write)")
	fs.StringVar(&o.profileDir, "profile", "", "save each server's CPU profile of each mode (/debug/pprof/profile) into this directory (the profiler's overhead is in that run's CPU numbers)")
}

func (o *fanoutOpts) modeList() ([]string, error) {
	var out []string
	for m := range strings.SplitSeq(o.modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case modeRate, modeBurst:
			out = append(out, m)
		default:
			return nil, fmt.Errorf("--modes: %q is not rate or burst", m)
		}
	}
	switch {
	case o.subs < 1 || o.channels < 1 || o.channels > o.subs:
		return nil, errors.New("need 1 ≤ --channels ≤ --subs")
	case o.rate <= 0 || o.duration <= 0 || o.burst < 1 || o.bursts < 1:
		return nil, errors.New("--rate, --duration, --burst and --bursts must be positive")
	}
	if err := checkProfileDir(o.profileDir); err != nil {
		return nil, err
	}
	return out, nil
}

// variant names the channel layout (and compression).
func (o *fanoutOpts) variant() string {
	v := "many channels"
	if o.channels == 1 {
		v = "one channel"
	}
	if o.document {
		v += ", JSON document"
	}
	if o.deflate {
		v += ", permessage-deflate"
	}
	if o.perConn {
		v += " per connection"
	}
	return v
}

// runs returns the settings of each run of one design. With compression
// the naive design compresses once per publication (a PreparedMessage),
// then per connection: both are honest baselines, and the second is how
// gorilla's users compress (issue 14 states its goal against it).
func (o fanoutOpts) runs(design string) []fanoutOpts {
	if !o.compression {
		return []fanoutOpts{o}
	}
	plain, deflate := o, o
	plain.document, deflate.document, deflate.deflate = true, true, true
	if design != results.Naive {
		return []fanoutOpts{plain, deflate}
	}
	perConn := deflate
	perConn.perConn = true
	return []fanoutOpts{plain, deflate, perConn}
}

// serverArgs are the extra flags a design needs for o.
func (o *fanoutOpts) serverArgs(design string) []string {
	switch {
	case !o.deflate || design != results.Naive:
		return nil // wsgate negotiates compression by default
	case o.perConn:
		return []string{"--compression", "--compression-mode", string(naive.CompressionPerConnection)}
	}
	return []string{"--compression", "--compression-mode", string(naive.CompressionPrepared)}
}

// compressionKind is how design compresses in o (results.Fanout.Compression).
func (o *fanoutOpts) compressionKind(design string) string {
	switch {
	case !o.deflate:
		return ""
	case design != results.Naive:
		return results.CompressionShared
	case o.perConn:
		return results.CompressionPerConnection
	}
	return results.CompressionPrepared
}

// fanoutCmd measures fan-out cost and latency for each design and the
// floor.
func fanoutCmd(e env, args []string) int {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	var o fanoutOpts
	c.register(fs)
	o.register(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	modes, err := o.modeList()
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench fanout:", err)
		return 2
	}
	b, err := newBench(e, "fanout", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench fanout:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	b.fanoutAll(ctx, o, modes)
	return b.finish()
}

// fanoutAll runs every design, then the floor, and relates them.
func (b *bench) fanoutAll(ctx context.Context, o fanoutOpts, modes []string) {
	for _, d := range b.designs {
		for _, run := range o.runs(d) {
			if ctx.Err() == nil {
				b.runFanout(ctx, d, run, modes)
			}
		}
	}
	if o.floor && ctx.Err() == nil {
		b.runFloor(ctx, o, modes)
	}
	linkFloor(b.run)
}

func channelNames(n int) []string {
	if n == 1 {
		return []string{"fanout"}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = "fanout." + strconv.Itoa(i)
	}
	return out
}

// runFanout measures one server.
func (b *bench) runFanout(ctx context.Context, design string, o fanoutOpts, modes []string) {
	if o.document && design == results.Centrifugo {
		b.run.Problem("fanout --compression: centrifugo is not measured with compression")
		return
	}
	p, err := b.startServer(ctx, design, o.serverArgs(design)...)
	if err != nil {
		return
	}
	defer b.stopServer(p)
	tag := fmt.Sprintf("fanout %s (%s)", design, o.variant())
	channels := channelNames(o.channels)
	subs, err := b.connectSubscribers(ctx, p, dialect(design), tag, o)
	if err != nil {
		b.run.Problem("%s: %v", tag, err)
		return
	}
	defer subs.Close()
	b.bar.Phase(tag+": subscribing", 0)
	if err := subs.Subscribe(ctx, channels, 60*time.Second); err != nil {
		b.run.Problem("%s: %v", tag, err)
		return
	}
	pub, err := b.dialPublisher(ctx, design, p, 0)
	if err != nil {
		b.run.Problem("%s: publisher: %v", tag, err)
		return
	}
	defer pub.Close()
	if sp, ok := pub.(*drive.SocketPublisher); ok && o.document {
		sp.UseDocument()
	}
	// A burst is burst messages on every channel, published in one go
	// (pipelined on wsgate's connection, batched through Centrifugo's API).
	var burst []string
	for range o.burst {
		burst = append(burst, channels...)
	}

	n := subs.Subscribed()
	f := &results.Fanout{Variant: o.variant(), Subs: n, Channels: o.channels,
		Document: o.document, Compression: o.compressionKind(design)}
	b.run.Design(design).Fanout = append(b.run.Design(design).Fanout, f)
	sc := scrape.New(p.DebugAddr)
	for _, mode := range modes {
		_, refused0 := pub.Replies()
		// Each message reaches the subscribers of its channel: with
		// messages spread evenly, n/channels of them. Refused publishes
		// reach nobody.
		expected := func(published int) int64 {
			_, refused := pub.Replies()
			return (int64(published) - (refused - refused0)) * int64(n) / int64(o.channels)
		}
		publish := b.fanoutPublish(ctx, tag, mode, pub, channels, burst, n, o)
		prof := startProfile(ctx, o.profileDir, profileName(design, o.variant(), mode), sc, profileSeconds(o, mode))
		m := b.measureFanout(ctx, p, sc, subs, pub.Seq(), publish, expected, o.stall)
		prof.wait(b)
		m.Mode = mode
		if mode == modeRate {
			m.Rate = o.rate
		} else {
			m.Burst, m.Bursts = o.burst, o.bursts
		}
		_, refused := pub.Replies()
		m.PublishErrors = int(refused - refused0)
		f.Modes = append(f.Modes, m)
		b.checkPhase(tag+" "+mode, m, p)
	}
	f.PushBytes = results.Round3(subs.MeanPushBytes())
	b.checkFanoutClients(tag, subs, pub)
}

// fanoutPublish is how a mode publishes: one round of every channel at
// the rate, or bursts of burst (n subscribers each receive o.burst).
func (b *bench) fanoutPublish(ctx context.Context, tag, mode string, pub drive.Publisher, channels, burst []string, n int, o fanoutOpts) func(*drive.Phase) int {
	if mode == modeRate {
		return func(*drive.Phase) int { return b.publishAtRate(ctx, tag, pub, channels, o) }
	}
	return func(ph *drive.Phase) int {
		return b.publishBursts(ctx, tag, o, ph, n*o.burst, func() int {
			_ = pub.Publish(burst...) // a broken publisher shows as missing deliveries
			return len(burst)
		})
	}
}

// checkFanoutClients records what the subscribers and the publisher saw
// go wrong during the whole fan-out.
func (b *bench) checkFanoutClients(tag string, subs *drive.Subscribers, pub drive.Publisher) {
	if bad, stale := subs.Anomalies(); bad > 0 || stale > 0 {
		b.run.Problem("%s: %d unparsable and %d stale pushes", tag, bad, stale)
	}
	if st := subs.Stats(); st.Closed > 0 {
		b.run.Problem("%s: the server closed %d subscribers: %v", tag, st.Closed, st.Closes)
	}
	if err := pub.Failure(); err != nil {
		b.run.Problem("%s: publisher: %v", tag, err)
	}
}

// connectSubscribers dials the subscriber pool and checks it is complete.
func (b *bench) connectSubscribers(ctx context.Context, p *server.Process, d drive.Dialect, tag string, o fanoutOpts) (*drive.Subscribers, error) {
	b.bar.Phase(fmt.Sprintf("%s: connecting %d subscribers", tag, o.subs), 0)
	subs, err := drive.DialSubscribersWith(ctx, d, p.Addr, o.subs, o.dialsInFlight, 60*time.Second,
		drive.Options{Compression: o.deflate})
	if err != nil {
		if subs != nil {
			_ = subs.Close()
		}
		return nil, err
	}
	st := subs.Stats()
	if st.Failed > 0 {
		b.run.Problem("%s: %d of %d subscriber dials failed: %s", tag, st.Failed, st.Conns, st.FirstError)
	}
	if o.deflate && st.Deflated != uint64(st.Connected) {
		b.run.Problem("%s: permessage-deflate negotiated on %d of %d subscribers", tag, st.Deflated, st.Connected)
	}
	return subs, nil
}

// checkPhase records a phase that did not deliver everything, or a server
// that died during it.
func (b *bench) checkPhase(tag string, m *results.FanoutMode, p *server.Process) {
	if m.Delivered < m.ExpectedDeliveries {
		b.run.Problem("%s: delivered %d of %d expected", tag, m.Delivered, m.ExpectedDeliveries)
	}
	if m.PublishErrors > 0 {
		b.run.Problem("%s: %d publishes refused", tag, m.PublishErrors)
	}
	if p.Exited() {
		b.run.Problem("%s: %v", tag, p.ExitError())
	}
}

// publishAtRate publishes one message per channel per round, rounds at
// o.rate per second for o.duration; it returns the messages published.
func (b *bench) publishAtRate(ctx context.Context, tag string, pub drive.Publisher, channels []string, o fanoutOpts) int {
	rounds := max(1, int(o.rate*o.duration.Seconds()))
	b.bar.Phase(fmt.Sprintf("%s: %d rounds at %g/s", tag, rounds, o.rate), rounds)
	interval := time.Duration(float64(time.Second) / o.rate)
	start := time.Now()
	for r := range rounds {
		wait.Sleep(ctx, time.Until(start.Add(time.Duration(r)*interval)))
		if ctx.Err() != nil {
			return r * len(channels)
		}
		_ = pub.Publish(channels...) // a broken publisher shows as missing deliveries
		b.bar.Set(r + 1)
	}
	return rounds * len(channels)
}

// publishBursts runs o.bursts bursts: each is sent by burst (which returns
// the messages it published), then delivered in full (perBurst deliveries,
// or a stall) before a pause and the next. It returns the messages
// published.
func (b *bench) publishBursts(ctx context.Context, label string, o fanoutOpts, ph *drive.Phase, perBurst int, burst func() int) int {
	b.bar.Phase(fmt.Sprintf("%s: %d bursts of %d", label, o.bursts, o.burst), o.bursts)
	published := 0
	for k := range o.bursts {
		if k > 0 {
			wait.Sleep(ctx, o.burstPause)
		}
		if ctx.Err() != nil {
			break
		}
		published += burst()
		want := int64(k+1) * int64(perBurst)
		drive.WaitDeliveries(ctx, ph, func() int64 { return want }, o.stall)
		b.bar.Set(k + 1)
	}
	return published
}

// measureFanout runs one publishing phase and measures the server (or
// floor) process around it.
func (b *bench) measureFanout(ctx context.Context, p *server.Process, sc *scrape.Client, subs *drive.Subscribers,
	firstSeq uint64, publish func(*drive.Phase) int, expected func(int) int64, stall time.Duration) *results.FanoutMode {
	m := &results.FanoutMode{}
	var writev0 float64
	if sc != nil {
		if mt, err := sc.Metrics(ctx); err == nil {
			writev0 = mt["wsgate_writev_total"]
		}
	}
	io0, errIO := b.proc.ReadIO(p.Pid())
	cpu0, errCPU := b.proc.ReadCPU(p.Pid())
	bytes0 := subs.BytesIn()
	ph := subs.Begin(firstSeq)
	start := time.Now()
	m.Published = publish(ph)
	drive.WaitDeliveries(ctx, ph, func() int64 { return expected(m.Published) }, stall)
	cpu1, errCPU1 := b.proc.ReadCPU(p.Pid())
	io1, errIO1 := b.proc.ReadIO(p.Pid())
	if sc != nil {
		if mt, err := sc.Metrics(ctx); err == nil {
			if v, ok := mt["wsgate_writev_total"]; ok {
				m.Writevs = int64(v - writev0)
			}
		}
	}
	end := ph.Last()
	if end.IsZero() {
		end = time.Now()
	}
	m.ExpectedDeliveries = expected(m.Published)
	m.Delivered = ph.Delivered()
	if m.Delivered > 0 {
		m.WireBytesPerDelivery = results.Round3(float64(subs.BytesIn()-bytes0) / float64(m.Delivered))
	}
	m.Seconds = results.Round3(end.Sub(start).Seconds())
	if m.Seconds > 0 {
		m.DeliveredPerSec = float64(int64(float64(m.Delivered) / m.Seconds))
	}
	if err := errors.Join(errCPU, errCPU1); err != nil {
		b.run.Problem("%s: cpu: %v", p.Name, err)
	} else {
		m.ServerCPUS = (cpu1 - cpu0).Seconds()
	}
	if err := errors.Join(errIO, errIO1); err != nil {
		b.run.Problem("%s: io: %v", p.Name, err)
	} else {
		m.WriteSyscalls = io1.SyscW - io0.SyscW
	}
	if m.Delivered > 0 {
		m.CPUUsPerDelivery = results.Round3(m.ServerCPUS * 1e6 / float64(m.Delivered))
		m.WritesPerDelivery = results.Round3(float64(m.WriteSyscalls) / float64(m.Delivered))
	}
	m.LatencyMs = results.LatencyOf(&ph.Latency, 60)
	return m
}

// runFloor measures the floor with the single-channel layout: every
// message to every socket.
func (b *bench) runFloor(ctx context.Context, o fanoutOpts, modes []string) {
	tag := "fanout floor"
	channel := channelNames(1)[0]
	p, err := b.startFloor(ctx, o.subs, channel)
	if err != nil {
		return
	}
	defer b.stopServer(p)
	subs, err := b.connectSubscribers(ctx, p, drive.Wsgate{}, tag, o)
	if err != nil {
		b.run.Problem("%s: %v", tag, err)
		return
	}
	defer subs.Close()
	var ready floor.Event
	if err := readFloorEvent(p, &ready); err != nil || ready.Event != "ready" {
		b.run.Problem("%s: not ready (%v): %+v", tag, err, ready)
		return
	}
	n := ready.Conns
	if n < subs.Stats().Connected {
		b.run.Problem("%s: accepted %d of %d connections", tag, n, subs.Stats().Connected)
	}
	f := &results.Fanout{Variant: "floor (every message to every socket)", Subs: n, Channels: 1}
	b.run.Design(results.Floor).Fanout = append(b.run.Design(results.Floor).Fanout, f)
	var seq uint64 // the floor numbers its messages from 0, like the publisher
	expected := func(published int) int64 { return int64(published) * int64(n) }
	if slices.Contains(modes, modeBurst) {
		modes = append(modes, modeCoalesced)
	}
	for _, mode := range modes {
		var ev floor.Event
		var publish func(*drive.Phase) int
		switch mode {
		case modeRate:
			rounds := max(1, int(o.rate*o.duration.Seconds()))
			publish = func(*drive.Phase) int {
				b.bar.Phase(fmt.Sprintf("%s: %d messages at %g/s", tag, rounds, o.rate), 0)
				if err := floorCommand(p, floor.Command{Cmd: modeRate, Rate: o.rate, Messages: rounds}, &ev); err != nil {
					b.run.Problem("%s: %v", tag, err)
					return 0
				}
				return ev.Messages
			}
		default:
			coalesce := mode == modeCoalesced
			publish = func(ph *drive.Phase) int {
				return b.publishBursts(ctx, tag+" "+mode, o, ph, n*o.burst, func() int {
					var one floor.Event
					if err := floorCommand(p, floor.Command{Cmd: modeBurst, Burst: o.burst, Bursts: 1, Coalesce: coalesce}, &one); err != nil {
						b.run.Problem("%s: %v", tag, err)
						return 0
					}
					return one.Messages
				})
			}
		}
		m := b.measureFanout(ctx, p, nil, subs, seq, publish, expected, o.stall)
		seq += uint64(m.Published)
		m.Mode = mode
		if mode == modeRate {
			m.Rate = o.rate
		} else {
			m.Burst, m.Bursts = o.burst, o.bursts
		}
		f.Modes = append(f.Modes, m)
		b.checkPhase(tag+" "+mode, m, p)
	}
	f.PushBytes = results.Round3(subs.MeanPushBytes())
}

// floorCommand sends one command to the floor and reads its answer.
func floorCommand(p *server.Process, c floor.Command, ev *floor.Event) error {
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := p.Stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("floor command: %w", err)
	}
	if err := readFloorEvent(p, ev); err != nil {
		return err
	}
	if ev.Event != "done" {
		return fmt.Errorf("floor: %s %s", ev.Event, ev.Error)
	}
	return nil
}

func readFloorEvent(p *server.Process, ev *floor.Event) error {
	line, err := p.Stdout.ReadString('\n')
	if err != nil {
		return fmt.Errorf("floor output: %w; stderr:\n%s", err, p.Logs())
	}
	*ev = floor.Event{}
	return decodeLine(line, ev)
}

// linkFloor sets every design's CPU per delivery as a multiple of the
// floor's in the same mode.
func linkFloor(run *results.Run) {
	fl := run.Find(results.Floor)
	if fl == nil || len(fl.Fanout) == 0 {
		return
	}
	for _, d := range run.Designs {
		if d.Design == results.Floor {
			continue
		}
		for _, f := range d.Fanout {
			for _, m := range f.Modes {
				if fm := fl.Fanout[0].Mode(m.Mode); fm != nil && fm.CPUUsPerDelivery > 0 {
					m.CPUVsFloor = results.Round3(m.CPUUsPerDelivery / fm.CPUUsPerDelivery)
				}
			}
		}
	}
}
