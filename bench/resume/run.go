package resume

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/wait"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// runner is one run: its configuration, what it found so far and the
// parts every phase uses.
type runner struct {
	cfg   Config
	run   *results.Run
	res   *Result
	extra []string // the gateways' flags
	info  rueidis.Client
	pub   *publisher
	cl    *clients
	// perPublish is the Redis calls one publication costs, by command.
	perPublish map[string]float64
}

// Run runs the whole scenario; problems go to run.
func Run(ctx context.Context, cfg Config, run *results.Run) *Result {
	o := cfg.Opts
	r := &runner{cfg: cfg, run: run,
		res: &Result{Clients: o.Clients, Channels: o.Channels, HistorySize: o.HistorySize, Rate: o.Rate}}
	if cfg.RedisURL == "" {
		cfg.Bar.Phase("resume: starting redis-server", 0)
		rs, err := server.StartRedis(ctx)
		if err != nil {
			run.Problem("resume: %v", err)
			return r.res
		}
		defer func() {
			if err := rs.Stop(); err != nil {
				run.Problem("resume: %v", err)
			}
		}()
		r.cfg.RedisURL = rs.URL
	}
	info, err := newRedisInfo(r.cfg.RedisURL)
	if err != nil {
		run.Problem("resume: redis: %v", err)
		return r.res
	}
	defer info.Close()
	r.info = info
	r.extra = []string{"--redis-url", r.cfg.RedisURL, "--history-size", strconv.Itoa(o.HistorySize), "--drain-window", o.DrainWindow.String()}
	r.gateways(ctx)
	return r.res
}

// gateways starts the gateway the clients use and the one that publishes,
// then runs the phases.
func (r *runner) gateways(ctx context.Context) {
	servers := r.cfg.Servers
	r.cfg.Bar.Phase("resume: starting the gateway and the publishing gateway", 0)
	gw, err := servers.Start(ctx, results.Wsgate, r.extra...)
	if err != nil {
		return
	}
	pubGw, err := servers.Start(ctx, results.Wsgate, r.extra...)
	if err != nil {
		servers.Stop(gw)
		return
	}
	pubGw.Name = "wsgate (publisher)"
	defer servers.Stop(pubGw)
	channels := make([]string, r.cfg.Channels)
	for i := range channels {
		channels[i] = "resume." + strconv.Itoa(i)
	}
	if r.pub, err = dialPublisher(ctx, pubGw.Addr, channels); err != nil {
		r.run.Problem("resume: publisher: %v", err)
		servers.Stop(gw)
		return
	}
	defer r.pub.close()

	// What one publication costs in Redis, to tell the publisher's share of
	// the storm window from the recovery's.
	if r.perPublish, err = r.calibratePublish(ctx); err != nil {
		r.run.Problem("resume: calibrating Redis calls per publication: %v", err)
		servers.Stop(gw)
		return
	}
	r.cl = newClients(r.cfg.Clients, channels)
	pool1, err := r.follow(ctx, gw)
	if err != nil {
		servers.Stop(gw)
		return
	}
	gw2 := r.restart(ctx, gw, pool1)
	if gw2 == nil {
		return
	}
	defer servers.Stop(gw2)
	r.reconnect(ctx, gw2)
}

// follow is phase 1: everyone subscribes and follows the channels while
// --messages are published on each.
func (r *runner) follow(ctx context.Context, gw *server.Process) (*loadclient.Pool, error) {
	o, res := r.cfg.Opts, r.res
	r.cfg.Bar.Phase(fmt.Sprintf("resume: %d clients subscribe", o.Clients), 0)
	pool1, err := r.cl.dial(ctx, gw.Addr, 500)
	if err != nil {
		r.run.Problem("resume: dial: %v", err)
		return nil, err
	}
	if st := pool1.Stats(); st.Failed > 0 {
		r.run.Problem("resume: %d of %d dials failed: %s", st.Failed, o.Clients, st.FirstError)
	}
	if err := r.cl.subscribe(ctx, pool1.Conns(), 30*time.Second); err != nil {
		r.run.Problem("resume: %v", err)
	}
	res.Subscribed = int(r.cl.replied.Load()) - int(r.cl.failed.Load())
	want := int64(o.Messages * o.Channels)
	r.cfg.Bar.Phase(fmt.Sprintf("resume: publishing %d per channel at %g/s", o.Messages, o.Rate), 0)
	r.pub.start(o.Rate)
	if !wait.For(ctx, time.Duration(float64(o.Messages)/o.Rate*float64(time.Second))+30*time.Second, func() bool { return r.pub.acked.Load() >= want }) {
		r.run.Problem("resume: %d of %d publications acknowledged", r.pub.acked.Load(), want)
	}
	res.Published = r.pub.acked.Load()
	return pool1, nil
}

// restart stops the gateway (SIGTERM: the drain closes every client with
// 1001), waits out the outage with the publisher going on and starts a
// new process on the same port; nil when it could not.
func (r *runner) restart(ctx context.Context, gw *server.Process, pool1 *loadclient.Pool) *server.Process {
	r.cfg.Bar.Phase("resume: restarting the gateway (SIGTERM, drain, new process)", 0)
	down := time.Now()
	if err := gw.Stop(); err != nil {
		r.run.Problem("resume: old gateway: %v", err)
	}
	wait.For(ctx, 5*time.Second, func() bool { return pool1.Stats().Open == 0 })
	st1 := pool1.Stats()
	r.res.Closes, r.res.Closes1001 = st1.Closes, st1.Closes[1001]
	_ = pool1.Close()
	wait.Sleep(ctx, r.cfg.Outage)
	spec, err := r.cfg.Servers.Spec(results.Wsgate, r.extra...)
	if err != nil {
		r.run.Problem("resume: %v", err)
		return nil
	}
	spec.Listen = gw.Addr
	gw2, err := server.Start(ctx, spec)
	if err != nil {
		r.run.Problem("resume: restart on %s: %v", gw.Addr, err)
		return nil
	}
	r.res.DowntimeMs = results.Millis(time.Since(down))
	if !r.cfg.PublishDuringStorm {
		r.pub.stop()
		r.pub.waitIdle(10 * time.Second)
	}
	return gw2
}

// reconnect is phase 2: the reconnect storm, then the tail (publishing
// stops; everyone must end at the last offset) and the verdict.
func (r *runner) reconnect(ctx context.Context, gw2 *server.Process) {
	o, res, cl := r.cfg.Opts, r.res, r.cl
	s0, err0 := readRedisStats(ctx, r.info)
	acked0 := r.pub.acked.Load()
	cl.phase.Store(2)
	r.cfg.Bar.Phase(fmt.Sprintf("resume: %d clients reconnect at once and resume", o.Clients), 0)
	stormStart := time.Now()
	pool2, err := cl.dial(ctx, gw2.Addr, 0)
	if err != nil {
		r.run.Problem("resume: reconnect: %v", err)
		return
	}
	defer pool2.Close()
	st2 := pool2.Stats()
	res.Reconnected, res.UpgradedMs = st2.Connected, results.Round3(st2.DialDuration.Seconds()*1000)
	if st2.Failed > 0 {
		r.run.Problem("resume: %d of %d reconnects failed: %s", st2.Failed, o.Clients, st2.FirstError)
	}
	if err := cl.resubscribe(pool2.Conns()); err != nil {
		r.run.Problem("resume: %v", err)
	}
	finished := wait.For(ctx, o.Timeout, func() bool { return cl.finished.Load() >= int64(st2.Connected) })
	stormEnd := time.Now()
	s1, err1 := readRedisStats(ctx, r.info)
	acked1 := r.pub.acked.Load()
	if !finished {
		r.run.Problem("resume: %d of %d reconnected clients finished within %v", cl.finished.Load(), st2.Connected, o.Timeout)
	}
	res.PublishedInStorm = acked1 - acked0

	r.pub.stop()
	r.pub.waitIdle(10 * time.Second)
	tops := r.pub.tops()
	r.cfg.Bar.Phase("resume: checking every client reached the last publication", 0)
	wait.For(ctx, 10*time.Second, func() bool { return cl.atTop(tops) >= st2.Connected })
	cl.summarize(res, stormStart, tops)
	if err := errors.Join(err0, err1); err != nil {
		r.run.Problem("resume: redis INFO: %v", err)
	} else {
		res.Redis = redisWindow(s0, s1, r.perPublish, acked1-acked0, stormEnd.Sub(stormStart), res.Recovered)
	}
	r.check(gw2)
}

// check records what should not have happened.
func (r *runner) check(gw2 *server.Process) {
	res := r.res
	switch {
	case res.Recovered < r.cfg.Clients:
		r.run.Problem("resume: %d of %d clients recovered", res.Recovered, r.cfg.Clients)
	case res.Gaps > 0 || res.Duplicates > 0:
		r.run.Problem("resume: %d gaps and %d duplicates after reconnecting", res.Gaps, res.Duplicates)
	case res.TailComplete < res.Recovered:
		r.run.Problem("resume: %d of %d recovered clients did not reach the last publication", res.Recovered-res.TailComplete, res.Recovered)
	}
	if res.GapsBefore > 0 {
		r.run.Problem("resume: %d gaps or duplicates in live delivery before the restart", res.GapsBefore)
	}
	if gw2.Exited() {
		r.run.Problem("resume: %v", gw2.ExitError())
	}
}
