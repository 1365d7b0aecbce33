package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/sleepers"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// slowChannel is the one channel of the slow-consumer scenario.
const slowChannel = "slow"

// slowOpts are the slow scenario's flags.
type slowOpts struct {
	subs          int
	share         float64
	payload       int
	rate          float64
	phase         time.Duration
	rcvBuf        int
	dialsInFlight int
	stall         time.Duration
	rounds        int
}

func (o *slowOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.subs, "subs", 1000, "subscribers in all, readers and non-readers")
	fs.Float64Var(&o.share, "slow-share", 0.1, "share of the subscribers that never read")
	fs.IntVar(&o.payload, "payload", 16384, "bytes per publication (big enough for a non-reader to reach the servers' queue limits within the phase)")
	fs.Float64Var(&o.rate, "rate", 25, "publications per second")
	fs.DurationVar(&o.phase, "phase", 15*time.Second, "length of each phase: readers alone, then with the non-readers")
	fs.IntVar(&o.rcvBuf, "slow-rcvbuf", 4096, "SO_RCVBUF of a non-reader (small: a stalled mobile client)")
	fs.IntVar(&o.dialsInFlight, "dials-in-flight", 500, "concurrent connects+handshakes")
	fs.DurationVar(&o.stall, "stall", 5*time.Second, "give up waiting for deliveries after this long without one")
	fs.IntVar(&o.rounds, "rounds", 3, "split each phase into this many windows, alternating readers alone and readers with fresh non-readers (1: one phase of each)")
}

func (o *slowOpts) split() (readers, slow int, err error) {
	if o.subs < 2 || o.share <= 0 || o.share >= 1 || o.rate <= 0 || o.phase <= 0 || o.rounds < 1 {
		return 0, 0, errors.New("need --subs ≥ 2, 0 < --slow-share < 1, --rate > 0, --phase > 0, --rounds ≥ 1")
	}
	slow = max(1, int(math.Round(float64(o.subs)*o.share)))
	return o.subs - slow, slow, nil
}

// slowCmd measures what non-reading subscribers do to the readers and to
// the server's memory.
func slowCmd(e env, args []string) int {
	fs := flag.NewFlagSet("slow", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	var o slowOpts
	c.register(fs)
	o.register(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if _, _, err := o.split(); err != nil {
		fmt.Fprintln(e.stderr, "wsbench slow:", err)
		return 2
	}
	b, err := newBench(e, "slow", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench slow:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	for _, d := range b.designs {
		if ctx.Err() == nil {
			b.runSlow(ctx, d, o)
		}
	}
	return b.finish()
}

// runSlow: readers alone for one phase, then readers plus non-readers for
// another, publishing at the same rate throughout while RSS is sampled.
// With --rounds N each phase is split into N windows and the two kinds
// alternate (alone, with fresh non-readers, alone, …): on a shared machine
// the load of other work drifts over tens of seconds, and alternating puts
// both kinds under the same drift, so their ratio measures the server.
func (b *bench) runSlow(ctx context.Context, design string, o slowOpts) {
	readers, slowN, _ := o.split()
	tag := "slow " + design
	p, err := b.startServer(ctx, design)
	if err != nil {
		return
	}
	defer b.stopServer(p)
	d := dialect(design)
	subs, err := b.dialSlowReaders(ctx, tag, d, p, readers, o)
	if err != nil {
		b.run.Problem("%s: %v", tag, err)
		return
	}
	defer subs.Close()
	pub, err := b.dialPublisher(ctx, design, p, o.payload)
	if err != nil {
		b.run.Problem("%s: publisher: %v", tag, err)
		return
	}
	defer pub.Close()

	s := &results.Slow{Readers: subs.Subscribed(), Slow: slowN, PayloadBytes: o.payload, Rate: o.rate, PhaseS: o.phase.Seconds(), Rounds: o.rounds}
	b.run.Design(design).Slow = s
	rss := newRSSSampler(b, p)
	defer func() {
		s.RSS, s.PeakRSSBytes = rss.stop()
	}()

	if st, err := b.proc.ReadStatus(p.Pid()); err == nil {
		s.BaseRSSBytes = st.RSSBytes
	}
	window := o
	window.phase = o.phase / time.Duration(o.rounds)
	alone, with := newSlowTotals(), newSlowTotals()
	sc := scrape.New(p.DebugAddr)
	before, _ := sc.Metrics(ctx)
	for r := range o.rounds {
		if ctx.Err() != nil {
			return
		}
		round := fmt.Sprintf(" (round %d of %d)", r+1, o.rounds)
		rss.setPhase("baseline")
		alone.add(b.slowPhase(ctx, tag+": readers alone"+round, subs, pub, window))

		b.bar.Phase(fmt.Sprintf("%s: connecting %d non-readers%s", tag, slowN, round), 0)
		sl, err := sleepers.Dial(ctx, sleepers.Config{Addr: p.Addr, Path: d.Path(), Conns: slowN,
			Hello: d.Hello(slowChannel), HelloText: d.Opcode() == loadclient.OpText, RcvBuf: o.rcvBuf})
		if err != nil {
			b.run.Problem("%s: non-readers: %v", tag, err)
			return
		}
		rss.setPhase("with slow")
		with.add(b.slowPhase(ctx, tag+": with non-readers"+round, subs, pub, window))
		sl.Close()
	}
	s.Baseline, s.WithSlow = alone.result(), with.result()
	after, err := sc.Metrics(ctx)
	if err == nil && before != nil {
		s.SlowClosed = slowClosed(design, before, after)
	}
	for _, ph := range []*results.SlowPhase{&s.Baseline, &s.WithSlow} {
		if ph.Delivered < ph.ExpectedDeliveries {
			b.run.Problem("%s: readers got %d of %d deliveries", tag, ph.Delivered, ph.ExpectedDeliveries)
		}
	}
	if err := pub.Failure(); err != nil {
		b.run.Problem("%s: publisher: %v", tag, err)
	}
	if p.Exited() {
		b.run.Problem("%s: %v", tag, p.ExitError())
	}
}

// dialSlowReaders connects the readers and subscribes them to the slow
// channel; failed dials are recorded, not fatal.
func (b *bench) dialSlowReaders(ctx context.Context, tag string, d drive.Dialect, p *server.Process, readers int, o slowOpts) (*drive.Subscribers, error) {
	b.bar.Phase(fmt.Sprintf("%s: connecting %d readers", tag, readers), 0)
	subs, err := drive.DialSubscribers(ctx, d, p.Addr, readers, o.dialsInFlight, 60*time.Second)
	if err != nil {
		if subs != nil {
			_ = subs.Close()
		}
		return nil, err
	}
	if st := subs.Stats(); st.Failed > 0 {
		b.run.Problem("%s: %d of %d reader dials failed: %s", tag, st.Failed, st.Conns, st.FirstError)
	}
	if err := subs.Subscribe(ctx, []string{slowChannel}, 60*time.Second); err != nil {
		_ = subs.Close()
		return nil, err
	}
	return subs, nil
}

// slowWindow is one window's outcome: its counts and its latencies.
type slowWindow struct {
	phase   results.SlowPhase
	latency *hist.Hist
}

// slowPhase publishes at o.rate for o.phase and waits for the readers.
func (b *bench) slowPhase(ctx context.Context, label string, subs *drive.Subscribers, pub drive.Publisher, o slowOpts) slowWindow {
	n := subs.Subscribed()
	closedBefore := subs.Stats().Closed
	ph := subs.Begin(pub.Seq())
	published := b.publishAtRate(ctx, label, pub, []string{slowChannel}, fanoutOpts{rate: o.rate, duration: o.phase})
	want := int64(published) * int64(n)
	drive.WaitDeliveries(ctx, ph, func() int64 { return want }, o.stall)
	return slowWindow{
		phase: results.SlowPhase{
			Published: published, ExpectedDeliveries: want, Delivered: ph.Delivered(),
			ReaderCloses: subs.Stats().Closed - closedBefore,
		},
		latency: &ph.Latency,
	}
}

// slowTotals pools the windows of one kind.
type slowTotals struct {
	sum     results.SlowPhase
	latency *hist.Hist
}

func newSlowTotals() *slowTotals { return &slowTotals{latency: &hist.Hist{}} }

func (t *slowTotals) add(w slowWindow) {
	t.sum.Published += w.phase.Published
	t.sum.ExpectedDeliveries += w.phase.ExpectedDeliveries
	t.sum.Delivered += w.phase.Delivered
	t.sum.ReaderCloses += w.phase.ReaderCloses
	t.latency.Add(w.latency)
}

func (t *slowTotals) result() results.SlowPhase {
	r := t.sum
	r.LatencyMs = results.LatencyOf(t.latency, 60)
	return r
}

// rssSampler records the server's RSS every 250 ms, labelled with the
// current phase.
type rssSampler struct {
	mu      sync.Mutex
	phase   string
	samples []results.RSSSample
	peak    int64
	done    chan struct{}
	exited  chan struct{}
}

func newRSSSampler(b *bench, p *server.Process) *rssSampler {
	r := &rssSampler{done: make(chan struct{}), exited: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(r.exited)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			st, err := b.proc.ReadStatus(p.Pid())
			if err == nil {
				r.mu.Lock()
				r.samples = append(r.samples, results.RSSSample{T: results.Round3(time.Since(start).Seconds()), Bytes: st.RSSBytes, Phase: r.phase})
				r.peak = max(r.peak, st.RSSBytes)
				r.mu.Unlock()
			}
			select {
			case <-r.done:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssSampler) setPhase(s string) {
	r.mu.Lock()
	r.phase = s
	r.mu.Unlock()
}

// stop ends sampling and returns the samples and the peak.
func (r *rssSampler) stop() ([]results.RSSSample, int64) {
	close(r.done)
	<-r.exited
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.samples, r.peak
}
