package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/report"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
)

// The resume storm: clients subscribed to a gateway on the Redis broker
// lose it (SIGTERM, a new process on the same port) while a second gateway
// keeps publishing, then all reconnect at once and subscribe with their
// last offset and epoch. Measured: how long until every client has
// recovered (reply recovered:true and every missed offset received, in
// order), how many did, and the Redis commands the recovery cost.

// resumeOpts are the resume scenario's flags.
type resumeOpts struct {
	clients, channels, messages, historySize int
	rate                                     float64
	drainWindow, outage, timeout             time.Duration
	publishDuringStorm                       bool
}

func (o *resumeOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.clients, "clients", 1000, "clients, spread evenly over the channels")
	fs.IntVar(&o.channels, "channels", 10, "channels")
	fs.IntVar(&o.messages, "messages", 20, "publications per channel while the clients are connected, before the restart")
	fs.Float64Var(&o.rate, "rate", 20, "publications per second on every channel, from before the restart until everyone recovered")
	fs.IntVar(&o.historySize, "history-size", 1000, "the gateways' --history-size")
	fs.DurationVar(&o.drainWindow, "drain-window", 2*time.Second, "the restarted gateway's --drain-window: its clients are closed (1001) over this long")
	fs.DurationVar(&o.outage, "outage", 3*time.Second, "from the old gateway's exit to the new one's start")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up waiting for the reconnected clients after this long")
	fs.BoolVar(&o.publishDuringStorm, "publish-during-storm", true, "keep publishing while the clients reconnect (replay and live delivery meet at a seam)")
}

func (o *resumeOpts) validate() error {
	switch {
	case o.channels < 1 || o.clients < o.channels:
		return errors.New("need 1 ≤ --channels ≤ --clients")
	case o.messages < 1 || o.rate <= 0:
		return errors.New("--messages and --rate must be positive")
	case o.historySize < 1:
		return errors.New("--history-size must be positive: without history there is nothing to resume from")
	case o.drainWindow <= 0 || o.outage < 0 || o.timeout <= 0:
		return errors.New("--drain-window and --timeout must be positive, --outage not negative")
	}
	return nil
}

// resumeResult is what the resume scenario measured (--json "result").
type resumeResult struct {
	Clients     int     `json:"clients"`
	Channels    int     `json:"channels"`
	HistorySize int     `json:"history_size"`
	Rate        float64 `json:"rate_per_channel"`
	// Before the restart.
	Subscribed int         `json:"subscribed"`
	Published  int64       `json:"published_before_restart"`
	Closes1001 int         `json:"closed_by_drain"`
	Closes     map[int]int `json:"closes_at_restart"`
	// DowntimeMs: SIGTERM to the new process answering.
	DowntimeMs float64 `json:"downtime_ms"`
	// The reconnect storm, from its first dial.
	Reconnected    int     `json:"reconnected"`
	UpgradedMs     float64 `json:"all_upgraded_ms"`
	RepliedMs      float64 `json:"all_replied_ms"`
	AllRecoveredMs float64 `json:"all_recovered_ms"` // 0 when not all recovered
	// Per-client time from the storm's start to recovered.
	RecoveryMs    results.Percentiles `json:"recovery_ms"`
	Recovered     int                 `json:"recovered"`
	NotRecovered  map[string]int      `json:"not_recovered,omitempty"` // by reason
	Incomplete    int                 `json:"incomplete"`              // recovered:true but offsets missing at the timeout
	MissedMean    float64             `json:"missed_mean"`
	MissedMax     uint64              `json:"missed_max"`
	MissedTotal   uint64              `json:"missed_total"`
	GapsBefore    int                 `json:"gaps_before_restart"` // and duplicates
	Gaps          int                 `json:"gaps"`
	Duplicates    int                 `json:"duplicates"`
	EarlyMessages int                 `json:"messages_before_reply"`
	TailComplete  int                 `json:"tail_complete"` // clients with every publication up to the last
	// Anomalies describes some gaps and duplicates: channel, offset, when.
	Anomalies        []string  `json:"anomalies,omitempty"`
	PublishedInStorm int64     `json:"published_during_storm"`
	Redis            *redisOps `json:"redis,omitempty"`
}

// redisOps is the Redis work during the reconnect storm.
type redisOps struct {
	WindowMs float64 `json:"window_ms"`
	// Calls counts commandstats calls in the window, by command (functions'
	// inner commands included, INFO excluded).
	Calls map[string]int64 `json:"calls"`
	// PerPublish is the calls one publication costs (measured before the
	// clients connected); Publisher the calls the window's publications
	// account for; Net = Calls − Publisher.
	PerPublish map[string]float64 `json:"per_publish"`
	Publisher  map[string]float64 `json:"publisher"`
	Net        map[string]float64 `json:"net"`
	// TotalProcessed is the total_commands_processed delta (INFO excluded).
	TotalProcessed int64   `json:"total_commands_processed"`
	NetPerClient   float64 `json:"net_calls_per_recovered_client"`
	// FcallPerClient: FCALLs (the gateway's round trips to Redis functions)
	// per recovered client, net of the publisher's.
	FcallPerClient float64 `json:"net_fcalls_per_recovered_client"`
}

// resumeCmd runs the resume storm against wsgate on the Redis broker.
func resumeCmd(e env, args []string) int {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	c := commonFlags{target: results.Wsgate, broker: "redis", pingInterval: 25 * time.Second}
	fs.StringVar(&c.wsgateBin, "wsgate-bin", "", "wsgate executable (default: beside wsbench, then $PATH)")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis the gateways share (default: a private redis-server on a free loopback port)")
	fs.StringVar(&c.jsonOut, "json", "", "write every number to this JSON file")
	var o resumeOpts
	o.register(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if err := o.validate(); err != nil {
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
	res := b.runResume(ctx, o)
	return b.finishOwn(resumeTables(res), res)
}

// runResume runs the whole scenario; problems go to b.run.
func (b *bench) runResume(ctx context.Context, o resumeOpts) *resumeResult {
	res := &resumeResult{Clients: o.clients, Channels: o.channels, HistorySize: o.historySize, Rate: o.rate}
	if b.flags.redisURL == "" {
		b.bar.Phase("resume: starting redis-server", 0)
		rs, err := server.StartRedis(ctx)
		if err != nil {
			b.run.Problem("resume: %v", err)
			return res
		}
		defer func() {
			if err := rs.Stop(); err != nil {
				b.run.Problem("resume: %v", err)
			}
		}()
		b.flags.redisURL = rs.URL
	}
	info, err := newRedisInfo(b.flags.redisURL)
	if err != nil {
		b.run.Problem("resume: redis: %v", err)
		return res
	}
	defer info.Close()

	extra := []string{"--history-size", strconv.Itoa(o.historySize), "--drain-window", o.drainWindow.String()}
	b.bar.Phase("resume: starting the gateway and the publishing gateway", 0)
	gw, err := b.startServer(ctx, results.Wsgate, extra...)
	if err != nil {
		return res
	}
	pubGw, err := b.startServer(ctx, results.Wsgate, extra...)
	if err != nil {
		b.stopServer(gw)
		return res
	}
	pubGw.Name = "wsgate (publisher)"
	defer b.stopServer(pubGw)
	channels := make([]string, o.channels)
	for i := range channels {
		channels[i] = "resume." + strconv.Itoa(i)
	}
	pub, err := dialResumePublisher(ctx, pubGw.Addr, channels)
	if err != nil {
		b.run.Problem("resume: publisher: %v", err)
		b.stopServer(gw)
		return res
	}
	defer pub.close()

	// What one publication costs in Redis, to tell the publisher's share of
	// the storm window from the recovery's.
	perPublish, err := b.calibratePublish(ctx, info, pub)
	if err != nil {
		b.run.Problem("resume: calibrating Redis calls per publication: %v", err)
		b.stopServer(gw)
		return res
	}

	// Phase 1: everyone subscribes and follows the channels.
	cl := newResumeClients(o.clients, channels)
	b.bar.Phase(fmt.Sprintf("resume: %d clients subscribe", o.clients), 0)
	pool1, err := cl.dial(ctx, gw.Addr, 500)
	if err != nil {
		b.run.Problem("resume: dial: %v", err)
		b.stopServer(gw)
		return res
	}
	if st := pool1.Stats(); st.Failed > 0 {
		b.run.Problem("resume: %d of %d dials failed: %s", st.Failed, o.clients, st.FirstError)
	}
	if err := cl.subscribe(ctx, pool1.Conns(), 30*time.Second); err != nil {
		b.run.Problem("resume: %v", err)
	}
	res.Subscribed = int(cl.replied.Load()) - int(cl.failed.Load())
	want := int64(o.messages * o.channels)
	b.bar.Phase(fmt.Sprintf("resume: publishing %d per channel at %g/s", o.messages, o.rate), 0)
	pub.start(o.rate)
	if !waitFor(ctx, time.Duration(float64(o.messages)/o.rate*float64(time.Second))+30*time.Second, func() bool { return pub.acked.Load() >= want }) {
		b.run.Problem("resume: %d of %d publications acknowledged", pub.acked.Load(), want)
	}
	res.Published = pub.acked.Load()

	// Restart: SIGTERM (the drain closes every client with 1001), an
	// outage with the publisher going on, a new process on the same port.
	b.bar.Phase("resume: restarting the gateway (SIGTERM, drain, new process)", 0)
	down := time.Now()
	if err := gw.Stop(); err != nil {
		b.run.Problem("resume: old gateway: %v", err)
	}
	waitFor(ctx, 5*time.Second, func() bool { return pool1.Stats().Open == 0 })
	st1 := pool1.Stats()
	res.Closes, res.Closes1001 = st1.Closes, st1.Closes[1001]
	_ = pool1.Close()
	sleepCtx(ctx, o.outage)
	spec, err := b.serverSpec(results.Wsgate, extra...)
	if err != nil {
		b.run.Problem("resume: %v", err)
		return res
	}
	spec.Listen = gw.Addr
	gw2, err := server.Start(ctx, spec)
	if err != nil {
		b.run.Problem("resume: restart on %s: %v", gw.Addr, err)
		return res
	}
	defer b.stopServer(gw2)
	res.DowntimeMs = msSince(down)
	if !o.publishDuringStorm {
		pub.stop()
		pub.waitIdle(10 * time.Second)
	}

	// Phase 2: the reconnect storm.
	s0, err0 := readRedisStats(ctx, info)
	acked0 := pub.acked.Load()
	cl.phase.Store(2)
	b.bar.Phase(fmt.Sprintf("resume: %d clients reconnect at once and resume", o.clients), 0)
	stormStart := time.Now()
	pool2, err := cl.dial(ctx, gw.Addr, 0)
	if err != nil {
		b.run.Problem("resume: reconnect: %v", err)
		return res
	}
	defer pool2.Close()
	st2 := pool2.Stats()
	res.Reconnected, res.UpgradedMs = st2.Connected, round3(st2.DialDuration.Seconds()*1000)
	if st2.Failed > 0 {
		b.run.Problem("resume: %d of %d reconnects failed: %s", st2.Failed, o.clients, st2.FirstError)
	}
	if err := cl.resubscribe(pool2.Conns()); err != nil {
		b.run.Problem("resume: %v", err)
	}
	finished := waitFor(ctx, o.timeout, func() bool { return cl.finished.Load() >= int64(st2.Connected) })
	stormEnd := time.Now()
	s1, err1 := readRedisStats(ctx, info)
	acked1 := pub.acked.Load()
	if !finished {
		b.run.Problem("resume: %d of %d reconnected clients finished within %v", cl.finished.Load(), st2.Connected, o.timeout)
	}
	res.PublishedInStorm = acked1 - acked0

	// The tail: publishing stops; everyone must end at the last offset.
	pub.stop()
	pub.waitIdle(10 * time.Second)
	tops := pub.tops()
	b.bar.Phase("resume: checking every client reached the last publication", 0)
	waitFor(ctx, 10*time.Second, func() bool { return cl.atTop(tops) >= st2.Connected })
	cl.summarize(res, stormStart, tops)
	if err := errors.Join(err0, err1); err != nil {
		b.run.Problem("resume: redis INFO: %v", err)
	} else {
		res.Redis = redisWindow(s0, s1, perPublish, acked1-acked0, stormEnd.Sub(stormStart), res.Recovered)
	}
	switch {
	case res.Recovered < o.clients:
		b.run.Problem("resume: %d of %d clients recovered", res.Recovered, o.clients)
	case res.Gaps > 0 || res.Duplicates > 0:
		b.run.Problem("resume: %d gaps and %d duplicates after reconnecting", res.Gaps, res.Duplicates)
	case res.TailComplete < res.Recovered:
		b.run.Problem("resume: %d of %d recovered clients did not reach the last publication", res.Recovered-res.TailComplete, res.Recovered)
	}
	if res.GapsBefore > 0 {
		b.run.Problem("resume: %d gaps or duplicates in live delivery before the restart", res.GapsBefore)
	}
	if gw2.Exited() {
		b.run.Problem("resume: %v", gw2.ExitError())
	}
	return res
}

// calibratePublish publishes a few rounds with nobody subscribed and
// returns the Redis calls per publication, by command.
func (b *bench) calibratePublish(ctx context.Context, info rueidis.Client, pub *resumePublisher) (map[string]float64, error) {
	const rounds = 20
	s0, err := readRedisStats(ctx, info)
	if err != nil {
		return nil, err
	}
	n := int64(rounds * len(pub.channels))
	for range rounds {
		for i := range pub.channels {
			if err := pub.publish(i); err != nil {
				return nil, err
			}
		}
	}
	if !pub.waitIdle(10 * time.Second) {
		return nil, errors.New("publications not acknowledged")
	}
	if r := pub.refused.Load(); r > 0 {
		return nil, fmt.Errorf("%d publications refused", r)
	}
	s1, err := readRedisStats(ctx, info)
	if err != nil {
		return nil, err
	}
	per := map[string]float64{}
	for name, v := range s1.calls {
		if d := v - s0.calls[name]; d > 0 && name != "info" {
			per[name] = float64(d) / float64(n)
		}
	}
	pub.resetCounts()
	return per, nil
}

// redisWindow subtracts the publisher's share from the storm window's
// calls.
func redisWindow(s0, s1 redisStats, perPublish map[string]float64, published int64, window time.Duration, recovered int) *redisOps {
	r := &redisOps{WindowMs: round3(window.Seconds() * 1000), Calls: map[string]int64{}, PerPublish: perPublish,
		Publisher: map[string]float64{}, Net: map[string]float64{}}
	var net float64
	for name, v := range s1.calls {
		d := v - s0.calls[name]
		if d <= 0 || name == "info" {
			continue
		}
		r.Calls[name] = d
		share := math.Min(float64(d), perPublish[name]*float64(published))
		if share > 0 {
			r.Publisher[name] = round3(share)
		}
		r.Net[name] = round3(float64(d) - share)
		net += float64(d) - share
	}
	r.TotalProcessed = s1.total - s0.total - (s1.infos - s0.infos)
	if recovered > 0 {
		r.NetPerClient = round3(net / float64(recovered))
		r.FcallPerClient = round3(r.Net["fcall"] / float64(recovered))
	}
	return r
}

// resumeClient is one client's view across both connections.
type resumeClient struct {
	mu      sync.Mutex
	channel string
	epoch   string
	last    uint64 // offset of the last message received in order
	gaps    [2]int // by phase
	dups    [2]int
	// After reconnecting.
	replied   bool
	recovered bool
	reason    string
	top       uint64 // the channel's top offset in the resume reply
	missed    uint64
	early     int // messages before the resume reply
	anomalies []string
	replyAt   time.Time
	doneAt    time.Time
	failed    bool // error reply, recovered:false, or closed
}

// resumeClients is every client, the two pools' callbacks and counters.
type resumeClients struct {
	c        []resumeClient
	phase    atomic.Int32 // 1, then 2 once the first pool is closed
	replied  atomic.Int64 // phase 1 subscribe replies (errors included)
	failed   atomic.Int64 // phase 1 subscribe errors
	finished atomic.Int64 // phase 2 clients recovered or failed
	bad      atomic.Int64 // undecodable frames
}

func newResumeClients(n int, channels []string) *resumeClients {
	cl := &resumeClients{c: make([]resumeClient, n)}
	for i := range cl.c {
		cl.c[i].channel = channels[i%len(channels)]
	}
	cl.phase.Store(1)
	return cl
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

// dial opens one connection per client; connection i is client i.
func (cl *resumeClients) dial(ctx context.Context, addr string, dialsInFlight int) (*loadclient.Pool, error) {
	return loadclient.Dial(ctx, loadclient.Config{Addr: addr, Path: drive.Path, Conns: len(cl.c),
		DialsInFlight: dialsInFlight, HandshakeTimeout: 15 * time.Second,
		OnMessage: cl.onMessage, OnClose: cl.onClose})
}

func (cl *resumeClients) onMessage(conn *loadclient.Conn, _ byte, payload []byte) {
	now := time.Now()
	var f serverFrame
	if err := msgpack.Unmarshal(payload, &f); err != nil {
		cl.bad.Add(1)
		return
	}
	phase := int(cl.phase.Load())
	c := &cl.c[conn.Index()]
	c.mu.Lock()
	defer c.mu.Unlock()
	switch f.Type {
	case codec.TypeReply:
		if phase == 1 {
			cl.replied.Add(1)
			if f.Error != nil {
				cl.failed.Add(1)
				c.reason = f.errText()
				return
			}
			c.epoch, c.last = f.Epoch, f.Offset
			return
		}
		cl.onResumeReply(c, &f, now)
	case codec.TypeMessage:
		if f.Channel != c.channel {
			cl.bad.Add(1)
			return
		}
		if phase == 2 && !c.replied {
			c.early++
		}
		switch off := f.Offset; {
		case off == c.last+1:
			c.last = off
		case off <= c.last:
			c.dups[phase-1]++
			c.note(phase, "duplicate", off, now)
		default:
			c.gaps[phase-1]++
			c.note(phase, "gap", off, now)
			c.last = off
		}
		if phase == 2 && c.replied && c.recovered && c.doneAt.IsZero() && !c.failed &&
			c.last >= c.top && c.gaps[1] == 0 && c.dups[1] == 0 {
			c.doneAt = now
			cl.finished.Add(1)
		}
	}
}

// maxAnomalies bounds the gaps and duplicates described per client.
const maxAnomalies = 3

// note describes a gap or duplicate (c.mu held).
func (c *resumeClient) note(phase int, what string, off uint64, now time.Time) {
	if len(c.anomalies) >= maxAnomalies {
		return
	}
	state := "before the restart"
	switch {
	case phase == 1:
	case !c.replied:
		state = "before the resume reply"
	case c.doneAt.IsZero():
		state = fmt.Sprintf("during replay (reply top %d)", c.top)
	default:
		state = fmt.Sprintf("%v after recovery (reply top %d)", now.Sub(c.doneAt).Round(time.Millisecond), c.top)
	}
	c.anomalies = append(c.anomalies, fmt.Sprintf("%s: %s: offset %d after %d, %s", c.channel, what, off, c.last, state))
}

// onResumeReply handles the answer to the subscribe with a position.
func (cl *resumeClients) onResumeReply(c *resumeClient, f *serverFrame, now time.Time) {
	if c.replied || c.failed {
		return
	}
	if f.Error != nil {
		c.failed, c.reason = true, f.errText()
		cl.finished.Add(1)
		return
	}
	c.replied, c.replyAt = true, now
	c.recovered = f.Recovered != nil && *f.Recovered
	c.top = f.Offset
	if c.top > c.last {
		c.missed = c.top - c.last
	}
	switch {
	case f.Recovered == nil:
		c.failed, c.reason = true, "reply without recovered"
	case !c.recovered:
		c.failed, c.reason = true, "recovered:false: "+f.Reason
	case f.Epoch != c.epoch:
		c.failed, c.reason = true, "recovered:true but the epoch changed"
	}
	if c.failed {
		cl.finished.Add(1)
		return
	}
	if c.last >= c.top && c.gaps[1] == 0 && c.dups[1] == 0 {
		c.doneAt = now
		cl.finished.Add(1)
	}
}

func (cl *resumeClients) onClose(conn *loadclient.Conn, code int) {
	if cl.phase.Load() != 2 {
		return
	}
	c := &cl.c[conn.Index()]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.doneAt.IsZero() && !c.failed {
		c.failed, c.reason = true, fmt.Sprintf("closed by the server (%d)", code)
		cl.finished.Add(1)
	}
}

// subscribe sends the plain subscribes of phase 1 and waits for the
// replies.
func (cl *resumeClients) subscribe(ctx context.Context, conns []*loadclient.Conn, timeout time.Duration) error {
	for _, conn := range conns {
		if err := conn.Send(loadclient.OpBinary, wire.Subscribe(1, cl.c[conn.Index()].channel)); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	if !waitFor(ctx, timeout, func() bool { return cl.replied.Load() >= int64(len(conns)) }) {
		return fmt.Errorf("%d of %d subscribes answered after %v", cl.replied.Load(), len(conns), timeout)
	}
	if n := cl.failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d subscribes failed (first: %s)", n, len(conns), cl.firstReason())
	}
	return nil
}

func (cl *resumeClients) firstReason() string {
	for i := range cl.c {
		c := &cl.c[i]
		c.mu.Lock()
		r := c.reason
		c.mu.Unlock()
		if r != "" {
			return r
		}
	}
	return ""
}

// resubscribe sends every reconnected client's subscribe with its resume
// position.
func (cl *resumeClients) resubscribe(conns []*loadclient.Conn) error {
	var errs int
	for _, conn := range conns {
		c := &cl.c[conn.Index()]
		c.mu.Lock()
		cmd := codec.Command{ID: 2, Cmd: codec.CmdSubscribe, Channel: []byte(c.channel),
			Offset: c.last, HasOffset: true, Epoch: []byte(c.epoch), HasEpoch: true}
		c.mu.Unlock()
		frame, err := codec.AppendCommand(nil, codec.Msgpack, &cmd)
		if err == nil {
			err = conn.Send(loadclient.OpBinary, frame)
		}
		if err != nil {
			errs++
			c.mu.Lock()
			if !c.failed {
				c.failed, c.reason = true, "send: "+err.Error()
				cl.finished.Add(1)
			}
			c.mu.Unlock()
		}
	}
	if errs > 0 {
		return fmt.Errorf("%d resume subscribes could not be sent", errs)
	}
	return nil
}

// atTop counts the recovered clients whose last offset is their channel's
// last publication.
func (cl *resumeClients) atTop(tops map[string]uint64) int {
	n := 0
	for i := range cl.c {
		c := &cl.c[i]
		c.mu.Lock()
		if !c.doneAt.IsZero() && c.last >= tops[c.channel] {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// summarize fills res from every client's state.
func (cl *resumeClients) summarize(res *resumeResult, stormStart time.Time, tops map[string]uint64) {
	var recovery []time.Duration
	var last, lastReply time.Time
	res.NotRecovered = map[string]int{}
	var missed uint64
	for i := range cl.c {
		c := &cl.c[i]
		c.mu.Lock()
		res.GapsBefore += c.gaps[0] + c.dups[0]
		if len(res.Anomalies) < 20 {
			for _, a := range c.anomalies {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("client %d: %s", i, a))
			}
		}
		res.Gaps += c.gaps[1]
		res.Duplicates += c.dups[1]
		res.EarlyMessages += c.early
		missed += c.missed
		res.MissedMax = max(res.MissedMax, c.missed)
		switch {
		case !c.doneAt.IsZero():
			res.Recovered++
			recovery = append(recovery, c.doneAt.Sub(stormStart))
			if c.doneAt.After(last) {
				last = c.doneAt
			}
			if c.last >= tops[c.channel] {
				res.TailComplete++
			}
		case c.failed:
			res.NotRecovered[c.reason]++
		case c.replied:
			res.Incomplete++
		default:
			res.NotRecovered["no reply"]++
		}
		if c.replied && c.replyAt.After(lastReply) {
			lastReply = c.replyAt
		}
		c.mu.Unlock()
	}
	res.MissedTotal = missed
	res.MissedMean = round3(float64(missed) / float64(len(cl.c)))
	if len(recovery) > 0 {
		q := loadclient.Percentiles(recovery, 50, 90, 99, 100)
		res.RecoveryMs = results.Percentiles{P50: durMs(q[0]), P90: durMs(q[1]), P99: durMs(q[2]), Max: durMs(q[3])}
	}
	if res.Recovered == len(cl.c) {
		res.AllRecoveredMs = round3(last.Sub(stormStart).Seconds() * 1000)
	}
	if !lastReply.IsZero() {
		res.RepliedMs = durMs(lastReply.Sub(stormStart))
	}
}

// writeJSON writes v as indented JSON to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func durMs(d time.Duration) float64 { return round3(d.Seconds() * 1000) }

func msSince(t time.Time) float64 { return durMs(time.Since(t)) }

// resumePublisher publishes on every channel through one connection and
// keeps each channel's highest acknowledged offset.
type resumePublisher struct {
	pool     *loadclient.Pool
	conn     *loadclient.Conn
	channels []string
	data     []byte

	mu     sync.Mutex
	chanOf []int // by id-1
	top    []uint64

	sent, acked, refused atomic.Int64
	stopCh, done         chan struct{}
	stopOnce             sync.Once
}

// publishWindow bounds unanswered publishes.
const publishWindow = 256

func dialResumePublisher(ctx context.Context, addr string, channels []string) (*resumePublisher, error) {
	p := &resumePublisher{channels: channels, data: wire.NewData(32), top: make([]uint64, len(channels))}
	pool, err := loadclient.Dial(ctx, loadclient.Config{Addr: addr, Path: drive.Path, Conns: 1, OnMessage: p.onMessage})
	if err != nil {
		return nil, err
	}
	conns := pool.Conns()
	if len(conns) != 1 {
		_ = pool.Close()
		return nil, fmt.Errorf("did not connect: %s", pool.Stats().FirstError)
	}
	p.pool, p.conn = pool, conns[0]
	return p, nil
}

func (p *resumePublisher) onMessage(_ *loadclient.Conn, _ byte, payload []byte) {
	var f serverFrame
	if msgpack.Unmarshal(payload, &f) != nil || f.Type != codec.TypeReply {
		return
	}
	if f.Error != nil {
		p.refused.Add(1)
		return
	}
	p.mu.Lock()
	if f.ID >= 1 && int(f.ID) <= len(p.chanOf) {
		ch := p.chanOf[f.ID-1]
		p.top[ch] = max(p.top[ch], f.Offset)
	}
	p.mu.Unlock()
	p.acked.Add(1)
}

// publish publishes one message on channel i, waiting while the window is
// full.
func (p *resumePublisher) publish(i int) error {
	if !waitFor(context.Background(), 10*time.Second, func() bool {
		return p.sent.Load()-p.acked.Load()-p.refused.Load() < publishWindow
	}) {
		return errors.New("publish window stuck")
	}
	p.mu.Lock()
	p.chanOf = append(p.chanOf, i)
	id := len(p.chanOf)
	p.mu.Unlock()
	wire.Stamp(p.data, uint64(id), time.Now())
	p.sent.Add(1)
	return p.conn.Send(loadclient.OpBinary, wire.Publish(uint32(id), p.channels[i], p.data))
}

// start publishes one message on every channel, rate times a second,
// until stop.
func (p *resumePublisher) start(rate float64) {
	p.stopCh, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		interval := time.Duration(float64(time.Second) / rate)
		next := time.Now()
		for {
			for i := range p.channels {
				if p.publish(i) != nil {
					return
				}
			}
			next = next.Add(interval)
			select {
			case <-p.stopCh:
				return
			case <-time.After(time.Until(next)):
			}
		}
	}()
}

func (p *resumePublisher) stop() {
	if p.stopCh == nil {
		return
	}
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
}

// waitIdle waits until every publish is answered.
func (p *resumePublisher) waitIdle(timeout time.Duration) bool {
	return waitFor(context.Background(), timeout, func() bool {
		return p.sent.Load() == p.acked.Load()+p.refused.Load()
	})
}

// resetCounts forgets the calibration's publications (not their offsets).
func (p *resumePublisher) resetCounts() {
	p.sent.Store(0)
	p.acked.Store(0)
	p.refused.Store(0)
	p.mu.Lock()
	p.chanOf = p.chanOf[:0]
	p.mu.Unlock()
}

// tops returns each channel's highest acknowledged offset.
func (p *resumePublisher) tops() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]uint64, len(p.channels))
	for i, ch := range p.channels {
		out[ch] = p.top[i]
	}
	return out
}

func (p *resumePublisher) close() {
	p.stop()
	_ = p.pool.Close()
}

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

// Redis: INFO deltas and a private redis-server.

// redisStats is one INFO reading.
type redisStats struct {
	calls map[string]int64 // commandstats calls by command
	total int64            // total_commands_processed
	infos int64            // INFO calls (ours), to leave out
}

func newRedisInfo(url string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	return rueidis.NewClient(opt)
}

func readRedisStats(ctx context.Context, c rueidis.Client) (redisStats, error) {
	text, err := c.Do(ctx, c.B().Info().Section("stats", "commandstats").Build()).ToString()
	if err != nil {
		return redisStats{}, err
	}
	return parseRedisInfo(text), nil
}

// parseRedisInfo reads total_commands_processed and every
// "cmdstat_<name>:calls=N,…" line.
func parseRedisInfo(text string) redisStats {
	s := redisStats{calls: map[string]int64{}}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			s.total, _ = strconv.ParseInt(v, 10, 64)
			continue
		}
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		if v, err := strconv.ParseInt(n, 10, 64); err == nil {
			s.calls[name] = v
		}
	}
	s.infos = s.calls["info"]
	return s
}

// Output shared by resume and abuse: Markdown tables on stdout, the
// problems, and the JSON.

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

func resumeTables(r *resumeResult) string {
	t := &mdTable{
		title: fmt.Sprintf("Resume storm: %s clients on %s channels reconnect at once after a gateway restart (Redis broker, history %s, %g publications/s per channel)",
			report.Num(float64(r.Clients), 0), report.Num(float64(r.Channels), 0), report.Num(float64(r.HistorySize), 0), r.Rate),
		head: []string{"", "value"},
	}
	of := func(n, m int) string { return report.Num(float64(n), 0) + " of " + report.Num(float64(m), 0) }
	msOr := func(v float64) string {
		if v <= 0 {
			return "–"
		}
		return fms(v) + " ms"
	}
	t.add("subscribed, then closed with 1001 by the drain", of(r.Subscribed, r.Clients)+", "+report.Num(float64(r.Closes1001), 0))
	t.add("gateway down (SIGTERM → new process answering)", msOr(r.DowntimeMs))
	t.add("publications missed per client: mean / max (total)", report.Num(r.MissedMean, 1)+" / "+report.Num(float64(r.MissedMax), 0)+" ("+report.Num(float64(r.MissedTotal), 0)+")")
	t.add("reconnect storm: all upgraded", msOr(r.UpgradedMs))
	t.add("all resume replies", msOr(r.RepliedMs))
	t.add("**all recovered**", "**"+msOr(r.AllRecoveredMs)+"**")
	t.add("per client recovered after: p50 / p90 / p99", fms(r.RecoveryMs.P50)+" / "+fms(r.RecoveryMs.P90)+" / "+fms(r.RecoveryMs.P99)+" ms")
	t.add("**recovered**", "**"+of(r.Recovered, r.Clients)+"**")
	t.add("gaps / duplicates / messages before the reply", report.Num(float64(r.Gaps), 0)+" / "+report.Num(float64(r.Duplicates), 0)+" / "+report.Num(float64(r.EarlyMessages), 0))
	t.add("published during the storm; then followed live to the last one", report.Num(float64(r.PublishedInStorm), 0)+"; "+of(r.TailComplete, r.Recovered))
	if r.Redis != nil {
		t.add("**Redis calls per recovered client** (of which FCALL)", "**"+report.Num(r.Redis.NetPerClient, 2)+"** ("+report.Num(r.Redis.FcallPerClient, 2)+")")
	}
	var notes []string
	notes = append(notes, "Times from the reconnect storm's first dial. Recovered: the resume reply said recovered:true (same epoch) and every offset after the client's last one, up to the channel's top in the reply, arrived in order.")
	if len(r.NotRecovered) > 0 || r.Incomplete > 0 {
		var parts []string
		for k, v := range r.NotRecovered {
			parts = append(parts, fmt.Sprintf("%d %s", v, k))
		}
		sort.Strings(parts)
		if r.Incomplete > 0 {
			parts = append(parts, fmt.Sprintf("%d incomplete at the timeout", r.Incomplete))
		}
		notes = append(notes, "Not recovered: "+strings.Join(parts, "; ")+".")
	}
	t.note = strings.Join(notes, " ")
	out := t.String()
	if r.Redis != nil {
		rt := &mdTable{
			title: fmt.Sprintf("Redis calls during the storm (%s ms, INFO commandstats deltas)", fms(r.Redis.WindowMs)),
			head:  []string{"command", "calls", "publisher's share", "recovery", "per recovered client"},
		}
		names := make([]string, 0, len(r.Redis.Calls))
		for n := range r.Redis.Calls {
			names = append(names, n)
		}
		slices.SortFunc(names, func(a, b string) int {
			if d := r.Redis.Net[b] - r.Redis.Net[a]; d != 0 {
				return int(math.Copysign(1, d))
			}
			return strings.Compare(a, b)
		})
		var sum, pubSum float64
		for _, n := range names {
			per := 0.0
			if r.Recovered > 0 {
				per = r.Redis.Net[n] / float64(r.Recovered)
			}
			rt.add(n, report.Num(float64(r.Redis.Calls[n]), 0), report.Num(r.Redis.Publisher[n], 0), report.Num(r.Redis.Net[n], 0), report.Num(per, 3))
			sum += float64(r.Redis.Calls[n])
			pubSum += r.Redis.Publisher[n]
		}
		rt.add("**all**", report.Num(sum, 0), report.Num(pubSum, 0), report.Num(sum-pubSum, 0), report.Num(r.Redis.NetPerClient, 2))
		rt.note = fmt.Sprintf("Calls include commands run inside functions (wsgate_history, wsgate_publish, …). The publisher's share is the window's %s publications × the calls one publication cost when measured alone. total_commands_processed grew by %s (it counts functions' inner commands too). FCALLs per recovered client: %s.",
			report.Num(float64(r.PublishedInStorm), 0), report.Num(float64(r.Redis.TotalProcessed), 0), report.Num(r.Redis.FcallPerClient, 2))
		out += rt.String()
	}
	return out
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
		if err := writeJSON(b.flags.jsonOut, struct {
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
