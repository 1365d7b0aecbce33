package million

import (
	"context"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/bench/harness/fit"
	"github.com/wsgate/wsgate/bench/harness/results"
)

// rampSampleEvery is the timeline's resolution during the ramp; server
// connection counts (for the per-server slope) are read every
// slopeEvery.
const (
	rampSampleEvery = 500 * time.Millisecond
	slopeEvery      = 5 * time.Second
)

// slopePoints are (connections, RSS - baseline) of every server at
// several moments of the ramp.
type slopePoints struct {
	base     []int64 // each server's RSS before any connection
	xs, ys   []float64
	min, max int // connections of the least and most loaded server, last read
}

// ramp tells every load client to dial and follows until every
// connection is upgraded and subscribed, or the ramp has to stop: the
// memory floor, the timeout, too many failures, a crashed process, ctx.
// It fills m's ramp fields and timeline and returns the slope points, and
// whether the stop was fatal (memory, a dead process, the run ended).
func (r *runner) ramp(ctx context.Context, f *fleet, m *results.Million, floor int64, timeout time.Duration) (sp *slopePoints, fatal bool) {
	cfg := r.cfg
	serverPids, _ := f.pids()
	sp = &slopePoints{}
	for _, pid := range serverPids {
		sp.base = append(sp.base, r.probe.rss([]int{pid}))
	}
	listen0, _ := cfg.Proc.ReadListenStats()
	_, clientPids := f.pids()
	server0, client0, redis0 := r.probe.cpu(serverPids), r.probe.cpu(clientPids), r.probe.cpu(r.redisPids())

	cfg.Bar.Phase(fmt.Sprintf("million: %s ramp", f.design), cfg.Conns)
	start := time.Now()
	f.broadcast(CmdDial)
	tick := time.NewTicker(rampSampleEvery)
	defer tick.Stop()
	nextSlope := start
	var tot Totals
	for {
		tot = f.totals()
		s := r.probe.sample(f, tot, "ramp", start, false)
		m.Timeline = append(m.Timeline, s)
		cfg.Bar.Set(tot.Subscribed)
		if time.Now().After(nextSlope) {
			r.slopeSample(ctx, f, sp)
			nextSlope = time.Now().Add(slopeEvery)
		}
		if tot.AllDialed && tot.Subscribed+tot.SubscribeErrors >= tot.Upgraded-tot.Closed {
			break
		}
		if reason, isFatal := r.rampStop(ctx, f, s, floor, start, timeout); reason != "" {
			m.StopReason, fatal = reason, isFatal
			failedBefore := f.totals().Failed
			r.stopDials(f)
			tot = f.totals()
			// Dials the stop aborted (or never started) did not fail.
			m.AbortedDials = tot.Failed - failedBefore
			tot.Failed = failedBefore
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	m.RampS = time.Since(start).Seconds()
	r.slopeSample(ctx, f, sp)
	m.Timeline = append(m.Timeline, r.probe.sample(f, tot, "ramp", start, true))

	m.Reached, m.Upgraded = tot.Subscribed, tot.Upgraded
	m.FailedDials, m.RedialedDials, m.FirstDialError = tot.Failed, tot.Redials, tot.FirstError
	m.SubscribeErrors, m.FirstSubscribeError = tot.SubscribeErrors, tot.FirstSubscribeError
	if m.RampS > 0 {
		m.ConnPerSec = float64(m.Reached) / m.RampS
	}
	m.HandshakeMs = results.Percentiles{P50: tot.HandshakeP50Ms, P99: tot.HandshakeP99Ms, Max: tot.HandshakeMaxMs}
	if listen1, err := cfg.Proc.ReadListenStats(); err == nil {
		m.ListenOverflows, m.ListenDrops = listen1.Overflows-listen0.Overflows, listen1.Drops-listen0.Drops
	}
	m.RampServerCPUS = (r.probe.cpu(serverPids) - server0).Seconds()
	m.RampClientCPUS = (r.probe.cpu(clientPids) - client0).Seconds()
	m.RedisCPURampS = (r.probe.cpu(r.redisPids()) - redis0).Seconds()
	if m.Reached > 0 {
		m.RampCPUUsPerConn = (m.RampServerCPUS + m.RampClientCPUS + m.RedisCPURampS) * 1e6 / float64(m.Reached)
	}
	m.Layout.MinPerServer, m.Layout.MaxPerServer = sp.min, sp.max
	m.CountersAfterRamp = f.counters(context.WithoutCancel(ctx))
	return sp, fatal
}

// rampStop says why the ramp must stop now ("" to go on), and whether
// the run cannot go on with this design at all.
func (r *runner) rampStop(ctx context.Context, f *fleet, s results.MillionSample, floor int64, start time.Time, timeout time.Duration) (reason string, fatal bool) {
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx).Error(), true
	case s.MemAvailableBytes > 0 && s.MemAvailableBytes < floor:
		return errMemoryFloor{available: s.MemAvailableBytes, floor: floor}.Error(), true
	case time.Since(start) > timeout:
		return fmt.Sprintf("time: not done after %v", timeout), false
	}
	if err := f.crashed(); err != nil {
		return fmt.Sprintf("a process exited: %v", firstLine(err.Error())), true
	}
	tot := f.totals()
	if failed := tot.Failed + tot.Closed + tot.SubscribeErrors; failed >= r.cfg.MaxFailures {
		return fmt.Sprintf("failures: %d dials failed, %d connections closed by a server, %d subscribes refused (limit %d): the host no longer keeps up",
			tot.Failed, tot.Closed, tot.SubscribeErrors, r.cfg.MaxFailures), false
	}
	return "", false
}

// stopDials aborts the dials in flight and waits until every client
// says it is done dialing, then a moment for subscribe replies in flight.
func (r *runner) stopDials(f *fleet) {
	f.broadcast(CmdStop)
	deadline := time.Now().Add(r.cfg.HandshakeTimeout + 5*time.Second)
	for !f.totals().AllDialed && time.Now().Before(deadline) {
		time.Sleep(rampSampleEvery)
	}
	time.Sleep(time.Second)
}

// slopeSample adds a (connections, RSS growth) point per server.
func (r *runner) slopeSample(ctx context.Context, f *fleet, sp *slopePoints) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conns := f.serverConns(ctx)
	serverPids, _ := f.pids()
	sp.min, sp.max = -1, 0
	for i, n := range conns {
		if n < 0 {
			continue
		}
		rss := r.probe.rss([]int{serverPids[i]})
		if rss == 0 {
			continue
		}
		sp.xs = append(sp.xs, float64(n))
		sp.ys = append(sp.ys, float64(rss-sp.base[i]))
		if sp.min < 0 || n < sp.min {
			sp.min = n
		}
		sp.max = max(sp.max, n)
	}
	sp.min = max(sp.min, 0)
}

// line fits the slope points (ok false with too few distinct points).
func (sp *slopePoints) line() (fit.Line, bool) {
	if len(sp.xs) < 3 {
		return fit.Line{}, false
	}
	l, err := fit.Linear(sp.xs, sp.ys)
	return l, err == nil
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
