package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/bench/harness/results"
)

// compared are the designs a comparison table has columns for, in order.
var compared = []string{results.Wsgate, results.Naive, results.Centrifugo}

// withFloor is compared and the floor: the rows of a fan-out table.
var withFloor = append(append([]string(nil), compared...), results.Floor)

// present returns the compared designs that have a result f in run.
func present(run *results.Run, has func(*results.Design) bool) []*results.Design {
	var out []*results.Design
	for _, name := range compared {
		if d := run.Find(name); d != nil && has(d) {
			out = append(out, d)
		}
	}
	return out
}

// tables builds every table the run has data for, in report order.
func tables(run *results.Run) []*table {
	var out []*table
	if t := peerTable(run); t != nil {
		out = append(out, t)
	}
	if t := idleTable(run); t != nil {
		out = append(out, t, idlePointsTable(run))
	}
	out = append(out, fanoutTables(run)...)
	if t := compressionTable(run); t != nil {
		out = append(out, t)
	}
	if t := churnTable(run); t != nil {
		out = append(out, t)
	}
	if t := slowTable(run); t != nil {
		out = append(out, t)
	}
	if t := projectionTable(run); t != nil {
		out = append(out, t)
	}
	return out
}

func idleTable(run *results.Run) *table {
	ds := present(run, func(d *results.Design) bool { return d.Idle != nil && len(d.Idle.Fits) > 0 })
	if len(ds) == 0 {
		return nil
	}
	t := &table{header: []string{"per idle connection"}, chart: ChartIdleMemory, chartAlt: "memory vs connections"}
	for _, d := range ds {
		t.header = append(t.header, d.Design)
	}
	// With wsgate in the run, one ratio column per other design.
	var peers []*results.Design
	if ds[0].Design == results.Wsgate {
		peers = ds[1:]
	}
	for _, d := range peers {
		t.header = append(t.header, "wsgate / "+d.Design)
	}
	// row adds a metric; compare says whether a ratio means anything
	// (not for counts that are ~0 for both designs or noise around 0).
	row := func(name string, v func(*results.Idle) float64, f func(float64) string, compare bool) {
		cells := []string{name}
		for _, d := range ds {
			cells = append(cells, f(v(d.Idle)))
		}
		for _, d := range peers {
			a, b := v(ds[0].Idle), v(d.Idle)
			if compare && a >= 0 && b > 0 {
				cells = append(cells, ratio(a, b))
			} else {
				cells = append(cells, dash)
			}
		}
		t.add(cells...)
	}
	b0 := func(v float64) string { return Num(v, 0) }
	f2 := func(v float64) string { return Num(v, 2) }
	f3 := func(v float64) string { return Num(v, 3) }
	row("RSS (bytes)", func(i *results.Idle) float64 { return i.RSSBytesPerConn }, b0, true)
	row("Go heap in use (bytes)", func(i *results.Idle) float64 { return i.HeapBytesPerConn }, b0, true)
	row("goroutines", func(i *results.Idle) float64 { return i.GoroutinesPerConn }, f2, true)
	row("threads", func(i *results.Idle) float64 { return i.ThreadsPerConn }, f3, false)
	row("fds", func(i *results.Idle) float64 { return i.FDsPerConn }, f3, true)
	row("kernel slab, server socket (bytes)", func(i *results.Idle) float64 { return i.KernelBytesPerConn }, b0, true)
	row("TCP buffers, server socket (bytes)", func(i *results.Idle) float64 { return i.TCPMemBytesPerConn }, b0, false)
	row("connect rate, largest step (conn/s)", func(i *results.Idle) float64 { return i.ConnectRate }, b0, true)
	row("handshake p50 (ms)", func(i *results.Idle) float64 { return i.HandshakeMs.P50 }, f2, true)
	row("handshake p99 (ms)", func(i *results.Idle) float64 { return i.HandshakeMs.P99 }, f2, true)
	row("idle CPU, pings on (% of a core per 10k conns)", func(i *results.Idle) float64 {
		if i.IdleCPU == nil {
			return math.NaN()
		}
		return i.IdleCPU.PctCorePer10k
	}, f3, true)
	row("idle CPU per ping answered (µs)", func(i *results.Idle) float64 {
		if i.IdleCPU == nil || i.IdleCPU.Pings == 0 {
			return math.NaN()
		}
		return i.IdleCPU.CPUUsPerPing
	}, f2, true)
	row("idle CPU per ping ÷ heartbeat floor", func(i *results.Idle) float64 {
		if i.IdleCPU == nil || i.IdleCPU.CPUVsFloor == 0 {
			return math.NaN()
		}
		return i.IdleCPU.CPUVsFloor
	}, f2, false)

	idleTitleAndNotes(t, run, ds)
	return t
}

// idleTitleAndNotes names the sizes the slopes were fitted over and adds
// the notes: the fits' r², how idle CPU was measured, the heartbeat floor.
func idleTitleAndNotes(t *table, run *results.Run, ds []*results.Design) {
	var sizes []string
	for _, p := range ds[0].Idle.Points {
		if p.Conns > 0 {
			sizes = append(sizes, Num(float64(p.Conns), 0))
		}
	}
	t.title = "Idle connections: least-squares slopes over " + strings.Join(sizes, ", ") + " connections"
	if ch := ds[0].Idle.Channel; ch != "" {
		t.title += ", each subscribed to channel " + ch
	}
	var r2 []string
	for _, d := range ds {
		r2 = append(r2, fmt.Sprintf("%s %.4f", d.Design, d.Idle.Fits[results.FitRSS].R2))
	}
	t.notes = append(t.notes, "RSS fit r²: "+strings.Join(r2, ", ")+
		". Kernel slab is the host-wide slab growth halved: the client's socket mirrors the server's.")
	if cpu := ds[0].Idle.IdleCPU; cpu != nil {
		t.notes = append(t.notes, fmt.Sprintf("Idle CPU: server utime+stime over %.0f s at %s connections, ping interval %s.",
			cpu.WindowS, Num(float64(cpu.Conns), 0), cpu.PingInterval))
	}
	if ws := run.Find(results.Wsgate); ws != nil && ws.Idle != nil && ws.Idle.IdleCPU != nil && ws.Idle.IdleCPU.Heartbeat == "tcp" {
		t.notes = append(t.notes, "wsgate ran with --heartbeat tcp: the kernel's keepalive probes on that interval, no WebSocket pings.")
	}
	if fl := run.Find(results.Floor); fl != nil && fl.Idle != nil && fl.Idle.IdleCPU != nil {
		c := fl.Idle.IdleCPU
		t.notes = append(t.notes, fmt.Sprintf("Heartbeat floor (bench/floor, same run): a bare epoll loop pinging %s connections every %s "+
			"in 100 ms slices and reading every pong spent %s µs per ping (%s pongs, %.0f s, %s %% of a core per 10k conns).",
			Num(float64(c.Conns), 0), c.PingInterval, Num(c.CPUUsPerPing, 2), Num(float64(c.Pings), 0), c.WindowS, Num(c.PctCorePer10k, 3)))
	}
}

func idlePointsTable(run *results.Run) *table {
	t := &table{title: "Idle connections: raw points",
		header: []string{"design", "conns", "RSS", "Go heap", "goroutines", "threads", "fds", "kernel slab (host)"}}
	for _, d := range present(run, func(d *results.Design) bool { return d.Idle != nil }) {
		for _, p := range d.Idle.Points {
			t.add(d.Design, Num(float64(p.Conns), 0), bytesIEC(float64(p.RSSBytes)), bytesIEC(float64(p.HeapInuseBytes)),
				Num(float64(p.Goroutines), 0), Num(float64(p.Threads), 0), Num(float64(p.FDs), 0), bytesIEC(float64(p.KernelSlabBytes)))
		}
	}
	return t
}

// fanoutTables makes one table per channel layout (variant). The floor
// is measured once, with every message to every socket; its rows appear in
// every table as the reference.
func fanoutTables(run *results.Run) []*table {
	var variants []string
	for _, d := range run.Designs {
		for _, f := range d.Fanout {
			if d.Design != results.Floor && !slices.Contains(variants, f.Variant) {
				variants = append(variants, f.Variant)
			}
		}
	}
	fl := floorFanout(run)
	if len(variants) == 0 && fl != nil {
		variants = append(variants, fl.Variant)
	}
	var out []*table
	for _, v := range variants {
		out = append(out, fanoutTable(run, v, fl, len(out) == 0))
	}
	return out
}

// fanoutTable is the table of one fan-out variant (plain, compressed …):
// every design's row of every mode, the floor's included.
func fanoutTable(run *results.Run, v string, fl *results.Fanout, first bool) *table {
	t := &table{header: []string{"mode", "design", "delivered/s", "CPU µs/delivery", "× floor",
		"writes/delivery", "latency p50 / p99 / p99.9 (ms)", "delivered"}}
	if first {
		t.chart, t.chartAlt = ChartFanoutCDF, "fan-out latency CDF"
	}
	byDesign := map[string]*results.Fanout{results.Floor: fl}
	var modes []string
	for _, name := range compared {
		if d := run.Find(name); d != nil {
			for _, f := range d.Fanout {
				if f.Variant == v {
					byDesign[name] = f
				}
			}
		}
	}
	var sizes, wire []string
	for _, name := range withFloor {
		f := byDesign[name]
		if f == nil {
			continue
		}
		sizes = append(sizes, fmt.Sprintf("%s %.1f", name, f.PushBytes))
		for _, m := range f.Modes {
			if m.WireBytesPerDelivery > 0 {
				wire = append(wire, fmt.Sprintf("%s %s %.1f", name, modeLabel(m), m.WireBytesPerDelivery))
			}
		}
		if t.title == "" {
			t.title = fmt.Sprintf("Fan-out, %s: %s subscribers on %s, %.0f-byte pushes", v,
				Num(float64(f.Subs), 0), plural(f.Channels, "channel"), f.PushBytes)
		}
		for _, m := range f.Modes {
			if !slices.Contains(modes, m.Mode) {
				modes = append(modes, m.Mode)
			}
		}
	}
	for _, mode := range modes {
		for _, name := range withFloor {
			f := byDesign[name]
			if f == nil || f.Mode(mode) == nil {
				continue
			}
			m := f.Mode(mode)
			vs := dash
			if m.CPUVsFloor > 0 {
				vs = Num(m.CPUVsFloor, 2) + "×"
			}
			t.add(modeLabel(m), name, Num(m.DeliveredPerSec, 0), Num(m.CPUUsPerDelivery, 2), vs,
				Num(m.WritesPerDelivery, 3), Ms(m.LatencyMs.P50)+" / "+Ms(m.LatencyMs.P99)+" / "+Ms(m.LatencyMs.P999),
				Num(float64(m.Delivered), 0)+" of "+Num(float64(m.ExpectedDeliveries), 0))
		}
	}
	t.notes = append(t.notes, "CPU: the server process's utime+stime from first publish to last delivery, over deliveries; "+
		"on loopback it includes the receivers' TCP work. Writes: write-class syscalls (/proc/<pid>/io syscw) per delivery. "+
		"Floor: a bare write(2) loop over as many sockets (bench/floor), every message to every socket, one frame per write "+
		"unless coalesced. × floor compares with the floor's row of the same mode.",
		"Mean push size received (bytes, without the 2-byte WebSocket header): "+strings.Join(sizes, ", ")+".")
	if len(wire) > 0 {
		t.notes = append(t.notes, "Bytes on the wire per delivery (frames as the subscribers read them, compressed or not): "+
			strings.Join(wire, ", ")+".")
	}
	return t
}

// floorFanout returns the floor's measurement, if any.
func floorFanout(run *results.Run) *results.Fanout {
	if d := run.Find(results.Floor); d != nil && len(d.Fanout) > 0 {
		return d.Fanout[0]
	}
	return nil
}

func modeLabel(m *results.FanoutMode) string {
	switch m.Mode {
	case "rate":
		return fmt.Sprintf("rate %s/s", trimFloat(m.Rate))
	case "burst":
		return fmt.Sprintf("burst %d×%d", m.Bursts, m.Burst)
	case "burst-coalesced":
		return fmt.Sprintf("burst %d×%d coalesced", m.Bursts, m.Burst)
	}
	return m.Mode
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return Num(float64(n), 0) + " " + word + "s"
}

func churnTable(run *results.Run) *table {
	ds := present(run, func(d *results.Design) bool { return d.Churn != nil })
	if len(ds) == 0 {
		return nil
	}
	c0 := ds[0].Churn
	t := &table{
		title: fmt.Sprintf("Connection storm: %s clients dialing at once, %s", Num(float64(c0.Conns), 0), plural(len(c0.Rounds), "round")),
		header: []string{"design", "accepted conn/s (mean)", "per round", "failed dials", "listen overflows",
			"handshake p50 / p99 (ms, worst round)"},
	}
	for _, d := range ds {
		c := d.Churn
		var rates []string
		worst := results.Percentiles{}
		for _, r := range c.Rounds {
			rates = append(rates, Num(r.ConnPerSec, 0))
			if r.HandshakeMs.P99 > worst.P99 {
				worst = r.HandshakeMs
			}
		}
		t.add(d.Design, Num(c.AcceptedPerSec, 0), strings.Join(rates, ", "), Num(float64(c.Errors), 0),
			Num(float64(c.ListenOverflows), 0), msPair(worst.P50, worst.P99))
	}
	t.notes = append(t.notes, "Listen overflows: host-wide TcpExt ListenOverflows during the storms (accept queue full; the client's SYN is retried).")
	return t
}

func slowTable(run *results.Run) *table {
	ds := present(run, func(d *results.Design) bool { return d.Slow != nil })
	if len(ds) == 0 {
		return nil
	}
	s0 := ds[0].Slow
	t := &table{
		title: fmt.Sprintf("Slow consumers: %s readers + %s non-reading subscribers, %d-byte messages at %s/s for %.0f s per phase%s",
			Num(float64(s0.Readers), 0), Num(float64(s0.Slow), 0), s0.PayloadBytes, trimFloat(s0.Rate), s0.PhaseS, roundsNote(s0.Rounds)),
		header: []string{"design", "readers p50 / p99 (ms), alone", "readers p50 / p99 (ms), with slow",
			"readers p99 with slow / alone", "readers delivered, with slow", "RSS start → peak", "slow closed by server"},
		chart: ChartSlowRSS, chartAlt: "server RSS during the slow-consumer scenario",
	}
	for _, d := range ds {
		s := d.Slow
		t.add(d.Design, msPair(s.Baseline.LatencyMs.P50, s.Baseline.LatencyMs.P99),
			msPair(s.WithSlow.LatencyMs.P50, s.WithSlow.LatencyMs.P99), ratio(s.WithSlow.LatencyMs.P99, s.Baseline.LatencyMs.P99),
			Num(float64(s.WithSlow.Delivered), 0)+" of "+Num(float64(s.WithSlow.ExpectedDeliveries), 0),
			bytesIEC(float64(s.BaseRSSBytes))+" → "+bytesIEC(float64(s.PeakRSSBytes)), Num(float64(s.SlowClosed), 0))
	}
	return t
}

func projectionTable(run *results.Run) *table {
	if len(run.Projection) == 0 {
		return nil
	}
	p0 := run.Projection[0]
	t := &table{
		title: fmt.Sprintf("Projected to %s idle connections (straight-line extrapolation from ≤ %s measured)",
			Num(float64(p0.Conns), 0), Num(float64(p0.MeasuredUpTo), 0)),
		header: []string{"design", "process RSS", "Go heap", "kernel (sockets)", "total memory", "fds", "goroutines"},
	}
	for _, p := range run.Projection {
		t.add(p.Design, bytesIEC(p.RSSBytes), bytesIEC(p.HeapBytes), bytesIEC(p.KernelBytes), bytesIEC(p.TotalBytes),
			Num(p.FDs, 0), Num(p.Goroutines, 0))
	}
	t.notes = append(t.notes, "Kernel: slab bytes per server socket × connections (idle sockets hold no buffer pages). "+
		"fds: a million connections need RLIMIT_NOFILE above this, and fs.nr_open / fs.file-max to match.")
	return t
}

// peerTable puts wsgate's headline numbers beside Centrifugo's, the
// strongest peer in the run: memory per idle connection, CPU per delivery
// one publication at a time and in bursts (single-channel layout), and
// the connection storm.
func peerTable(run *results.Run) *table {
	w, c := run.Find(results.Wsgate), run.Find(results.Centrifugo)
	if w == nil || c == nil {
		return nil
	}
	t := &table{title: "wsgate against Centrifugo: the headline ratios",
		header: []string{"measure", "wsgate", "centrifugo", "wsgate / centrifugo"}}
	row := func(name string, a, b float64, f func(float64) string) {
		t.add(name, f(a), f(b), fineRatio(a, b))
	}
	b0 := func(v float64) string { return Num(v, 0) }
	f2 := func(v float64) string { return Num(v, 2) }
	if w.Idle != nil && c.Idle != nil && len(w.Idle.Fits) > 0 && len(c.Idle.Fits) > 0 {
		row("RSS per idle connection (bytes)", w.Idle.RSSBytesPerConn, c.Idle.RSSBytesPerConn, b0)
		row("Go heap per idle connection (bytes)", w.Idle.HeapBytesPerConn, c.Idle.HeapBytesPerConn, b0)
	}
	for _, mode := range []string{"rate", "burst"} {
		wm, cm := firstFanoutMode(w, mode), firstFanoutMode(c, mode)
		if wm == nil || cm == nil {
			continue
		}
		row("CPU µs per delivery, "+modeLabel(wm)+", one channel", wm.CPUUsPerDelivery, cm.CPUUsPerDelivery, f2)
		row("delivered/s, "+modeLabel(wm)+", one channel", wm.DeliveredPerSec, cm.DeliveredPerSec, b0)
	}
	if w.Churn != nil && c.Churn != nil {
		row("storm: accepted conn/s", w.Churn.AcceptedPerSec, c.Churn.AcceptedPerSec, b0)
		t.add("storm: listen overflows", b0(float64(w.Churn.ListenOverflows)), b0(float64(c.Churn.ListenOverflows)), dash)
	}
	if len(t.rows) == 0 {
		return nil
	}
	t.notes = append(t.notes, "Each number is from the tables below (same run, same client). Idle: slopes; fan-out: the single-channel layout.")
	return t
}

// fineRatio is ratio with the precision a small ratio needs to be read
// against a target like "≤ 1/50": 0.017× (1/60).
func fineRatio(a, b float64) string {
	if b == 0 || a <= 0 || math.IsNaN(a) || math.IsNaN(b) || a/b >= 0.1 {
		return ratio(a, b)
	}
	return Num(a/b, 3) + "× (1/" + Num(b/a, 0) + ")"
}

// firstFanoutMode returns mode of d's first fan-out variant (the
// single-channel layout when it ran).
func firstFanoutMode(d *results.Design, mode string) *results.FanoutMode {
	if len(d.Fanout) == 0 {
		return nil
	}
	return d.Fanout[0].Mode(mode)
}

// roundsNote says how a slow run's phases were interleaved.
func roundsNote(rounds int) string {
	if rounds <= 1 {
		return ""
	}
	return fmt.Sprintf(", alternating in %d rounds (fresh non-readers each round)", rounds)
}
