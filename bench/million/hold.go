package million

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/scrape"
)

// memBase is a design's memory before its first connection.
type memBase struct {
	serverRSS, serverHeap, clientRSS int64
	memAvailable                     int64
	gc                               []*scrape.GCStats // right after the servers started
}

// holdSampleEvery is the timeline's resolution while connections idle.
const holdSampleEvery = time.Second

// hold keeps every connection open and silent for cfg.Hold (pings are the
// only traffic) and measures the servers' CPU and GC meanwhile.
func (r *runner) hold(ctx context.Context, f *fleet, m *results.Million) {
	cfg := r.cfg
	cfg.Bar.Phase(fmt.Sprintf("million: holding %d connections for %v", m.Reached, cfg.Hold), 0)
	serverPids, clientPids := f.pids()
	gc0 := gcAll(ctx, f.scrapes)
	tot0 := f.totals()
	server0, client0, redis0 := r.probe.cpu(serverPids), r.probe.cpu(clientPids), r.probe.cpu(r.redisPids())
	host0 := r.probe.hostCPU()
	start := time.Now()
	rampStart := start.Add(-time.Duration(m.RampS * float64(time.Second)))
	tick := time.NewTicker(holdSampleEvery)
	defer tick.Stop()
	var mid cpuMark // the second half: past the ramp's after-effects
	for time.Since(start) < cfg.Hold && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			m.Timeline = append(m.Timeline, r.probe.sample(f, f.totals(), "hold", rampStart, false))
			if mid.at == 0 && time.Since(start) >= cfg.Hold/2 {
				mid = cpuMark{at: time.Since(start), server: r.probe.cpu(serverPids), host: r.probe.hostCPU().Busy}
			}
		}
	}
	window := time.Since(start)
	server1, client1, redis1 := r.probe.cpu(serverPids), r.probe.cpu(clientPids), r.probe.cpu(r.redisPids())
	host1 := r.probe.hostCPU()
	tot1 := f.totals()
	gc1 := gcAll(context.Background(), f.scrapes)
	if ctx.Err() != nil {
		m.StopReason = "hold interrupted: " + context.Cause(ctx).Error()
		r.run.Problem("%s: %s after %v", f.design, m.StopReason, window.Round(time.Second))
	}

	h := &results.MillionHold{Conns: tot1.Subscribed, WindowS: window.Seconds(), PingInterval: cfg.PingInterval.String(), Heartbeat: heartbeatOf(f.design, cfg),
		ServerCPUS: (server1 - server0).Seconds(), ClientCPUS: (client1 - client0).Seconds(), RedisCPUS: (redis1 - redis0).Seconds(),
		Pings: int64(tot1.Pings - tot0.Pings), ClosedByServer: tot1.Closed - tot0.Closed}
	h.ServerPctCore = 100 * h.ServerCPUS / h.WindowS
	h.ClientPctCore = 100 * h.ClientCPUS / h.WindowS
	h.HostPctCore = 100 * (host1.Busy - host0.Busy).Seconds() / h.WindowS
	h.HostSoftirqPctCore = 100 * (host1.Softirq - host0.Softirq).Seconds() / h.WindowS
	if late := window - mid.at; mid.at > 0 && late > 0 {
		h.LateWindowS = late.Seconds()
		h.ServerPctCoreLate = 100 * (server1 - mid.server).Seconds() / h.LateWindowS
		h.HostPctCoreLate = 100 * (host1.Busy - mid.host).Seconds() / h.LateWindowS
	}
	if h.Conns > 0 {
		h.ServerPctCorePer10k = h.ServerPctCore * 10_000 / float64(h.Conns)
	}
	h.PingsPerS = float64(h.Pings) / h.WindowS
	if h.Pings > 0 {
		h.ServerCPUUsPerPing = h.ServerCPUS * 1e6 / float64(h.Pings)
		net := h.ServerCPUS - m.BaselinePctCore/100*h.WindowS
		h.ServerCPUUsPerPingNet = max(net, 0) * 1e6 / float64(h.Pings)
	}
	h.GC = gcSummary(gc0, gc1)
	h.GC.PromMaxMs = promGCMax(context.Background(), f.scrapes)
	m.Hold = h
}

// cpuMark is the servers' and the host's CPU time at a moment of the hold.
type cpuMark struct {
	at           time.Duration // since the hold began
	server, host time.Duration
}

// heartbeatOf is who pings design's idle connections: the naive server
// always sends WebSocket pings.
func heartbeatOf(design string, cfg Config) string {
	if design == results.Naive {
		return "ping"
	}
	return cfg.Heartbeat
}

// gcSummary turns the servers' GC records before and after a window into
// pause percentiles over every collection in it.
func gcSummary(before, after []*scrape.GCStats) results.MillionGC {
	g := results.MillionGC{Source: "runtime.MemStats PauseNs via /debug/pprof/heap?debug=1"}
	var pauses []time.Duration
	for i := range before {
		if before[i] == nil || after[i] == nil {
			continue
		}
		g.Servers++
		p, lost := after[i].PausesSince(*before[i])
		pauses = append(pauses, p...)
		g.Lost += lost
	}
	g.Collections = len(pauses) + g.Lost
	if len(pauses) == 0 {
		return g
	}
	slices.Sort(pauses)
	at := func(q float64) float64 {
		i := min(int(q*float64(len(pauses))), len(pauses)-1) // nearest rank
		return float64(pauses[i].Microseconds()) / 1000
	}
	g.PauseP50Ms, g.PauseP99Ms, g.PauseMaxMs = at(0.5), at(0.99), at(1)
	return g
}

// promGCMax is the largest go_gc_duration_seconds{quantile="1"} over the
// servers' /metrics, in ms (0 when no server exports it).
func promGCMax(ctx context.Context, scs []*scrape.Client) float64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var mx float64
	for _, sc := range scs {
		m, err := sc.Metrics(ctx)
		if err != nil {
			continue
		}
		if v, ok := m[`go_gc_duration_seconds{quantile="1"}`]; ok {
			mx = max(mx, v*1000)
		}
	}
	return mx
}

// memory measures the split at the connections held now: a forced GC in
// every server first, so heap and RSS hold live data only.
func (r *runner) memory(ctx context.Context, f *fleet, m *results.Million, base memBase, sp *slopePoints) {
	r.cfg.Bar.Phase(fmt.Sprintf("million: %s memory", f.design), 0)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	gcPre := gcAll(ctx, f.scrapes)
	runGC := gcSummary(base.gc, gcPre)
	m.GCRun = &runGC
	heap, answered := heapAll(ctx, f.scrapes)
	if answered < len(f.scrapes) {
		r.run.Problem("%s: %d of %d servers did not report their heap", f.design, len(f.scrapes)-answered, len(f.scrapes))
	}
	forced := gcSummary(gcPre, gcAll(ctx, f.scrapes))
	m.GCForced = &forced
	r.slopeSample(ctx, f, sp)
	serverPids, clientPids := f.pids()
	tot := f.totals()
	mm := results.MillionMemory{Conns: tot.Subscribed,
		ServerRSSBytes: r.probe.rss(serverPids), ServerBaseRSSBytes: base.serverRSS,
		ServerHeapBytes: heap, ServerBaseHeapBytes: base.serverHeap,
		ClientRSSBytes: r.probe.rss(clientPids), ClientBaseRSSBytes: base.clientRSS,
		RedisRSSBytes: r.probe.rss(r.redisPids()), KernelSlabBytes: r.probe.slabGrowth(true)}
	if st, err := r.cfg.Proc.ReadSockstat(); err == nil {
		mm.TCPMemBytes = st.MemPages * int64(r.probe.pageSize)
	}
	mm.MemAvailableBytes, _ = r.cfg.Proc.ReadMemAvailable()
	mm.MemAvailableDropBytes = base.memAvailable - mm.MemAvailableBytes
	if n := float64(mm.Conns); n > 0 {
		mm.ServerRSSPerConn = float64(mm.ServerRSSBytes-mm.ServerBaseRSSBytes) / n
		mm.ServerHeapPerConn = float64(mm.ServerHeapBytes-mm.ServerBaseHeapBytes) / n
		mm.ClientRSSPerConn = float64(mm.ClientRSSBytes-mm.ClientBaseRSSBytes) / n
		mm.KernelSlabPerConn = float64(mm.KernelSlabBytes) / n
	}
	if l, ok := sp.line(); ok {
		mm.ServerRSSSlope, mm.ServerRSSSlopeR2, mm.SlopePoints = l.Slope, l.R2, l.N
	}
	m.Memory = mm
}
