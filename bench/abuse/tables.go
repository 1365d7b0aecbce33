package abuse

import (
	"fmt"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/bench/harness/report"
)

// Tables renders r as the Markdown tables "wsbench abuse" prints: the
// well-behaved clients' latency per variant, then what each abuser saw.
func Tables(r *Result, o Opts) string {
	out := variantsTable(r, o)
	for _, v := range r.Variants {
		if f := v.Flood; f != nil {
			out += floodTable(f, o)
		}
		if s := v.Storm; s != nil {
			out += stormTable(r, v, s, o)
		}
		if s := v.Stall; s != nil {
			out += stallTable(r, s, o)
		}
	}
	return out
}

func variantsTable(r *Result, o Opts) string {
	t := &report.Table{
		Title: fmt.Sprintf("Abuse: %s well-behaved clients, %g protocol pings/s each, latency over %v unloaded and %v under abuse%s",
			report.Num(float64(r.Clients), 0), r.PingRate, o.Phase, o.Phase, roundsNote(r.Rounds)),
		Header: []string{"abuse", "gateway flags", "unloaded p50 / p99 / max (ms)", "under abuse p50 / p99 / max (ms)", "p99 loaded / unloaded", "pings sent / answered (unloaded; loaded)", "gateway CPU unloaded → loaded", "abuser CPU"},
	}
	for _, v := range r.Variants {
		what := map[string]string{VariantFlood: "one client floods publishes", VariantStorm: fmt.Sprintf("storms of %s connections", report.Num(float64(o.StormConns), 0)),
			VariantStall: fmt.Sprintf("%s stalled clients", report.Num(float64(o.StallConns), 0))}[v.Variant]
		t.Add(what, "`"+strings.Join(v.Flags, " ")+"`",
			report.Ms(v.Unloaded.LatencyMs.P50)+" / "+report.Ms(v.Unloaded.LatencyMs.P99)+" / "+report.Ms(v.Unloaded.LatencyMs.Max),
			report.Ms(v.Loaded.LatencyMs.P50)+" / "+report.Ms(v.Loaded.LatencyMs.P99)+" / "+report.Ms(v.Loaded.LatencyMs.Max),
			report.Num(v.P99Ratio, 2)+"×",
			report.Num(float64(v.Unloaded.Sent), 0)+" / "+report.Num(float64(v.Unloaded.Answered), 0)+"; "+report.Num(float64(v.Loaded.Sent), 0)+" / "+report.Num(float64(v.Loaded.Answered), 0),
			report.Num(v.GatewayCPUUnloaded, 0)+"% → "+report.Num(v.GatewayCPULoaded, 0)+"%", report.Num(v.AbuserCPU, 0)+"%")
	}
	t.Note = "Latency: a `ping` command's send to its reply, at the client. The client, the abuser and the gateway share 2 cores; " + schedNote(r.AbuserSched) +
		" Answered: replies that arrived within the phase. CPU: utime+stime over the phase, % of one core (the abuser's: its process). Target: p99 under abuse within 2× of unloaded."
	return t.Markdown()
}

func floodTable(f *FloodStats, o Opts) string {
	t := &report.Table{
		Title:  "Flood: one client publishing as fast as it can" + map[bool]string{true: ", reconnecting at once when closed", false: ""}[o.FloodReconnect],
		Header: []string{"connections", "publish frames written", "accepted", "error 107", "closes", "closed after (first; p50 / p99 ms)", "frames written per connection (median)"},
	}
	var closes []string
	for code, n := range f.Closes {
		closes = append(closes, fmt.Sprintf("%d × %d", n, code))
	}
	sort.Strings(closes)
	t.Add(report.Num(float64(f.Connections), 0), report.Num(float64(f.Sent), 0), report.Num(float64(f.Accepted), 0), report.Num(float64(f.RateLimited), 0),
		strings.Join(closes, ", "), report.Ms(f.FirstClosedMs)+"; "+report.Ms(f.ClosedAfterMs.P50)+" / "+report.Ms(f.ClosedAfterMs.P99), report.Num(f.SentPerConn, 0))
	t.Note = fmt.Sprintf("Closed after: from a connection's first write to the close frame it received. Written: whole frames the kernel took (the socket buffers on both ends); the gateway acts on about %d commands per connection (%d accepted, %d refused with 107, the next refusal closes with 4029) and reads and discards the rest while it closes.",
		2*o.CommandBurst+1, o.CommandBurst, o.CommandBurst)
	return t.Markdown()
}

func stormTable(r *Result, v *Variant, s *StormStats, o Opts) string {
	t := &report.Table{
		Title:  fmt.Sprintf("Storm: %s connections at once from %d addresses, held %v, again, for %v", report.Num(float64(o.StormConns), 0), o.StormIPs, o.StormHold, o.Phase),
		Header: []string{"rounds", "dialed", "accepted (101)", "429 (per IP)", "503 (total)", "other failures", "most held from one address", "max wsgate_conns_open (samples)", "caps held"},
	}
	held := v.MaxConnsOpen <= float64(o.MaxConns) && s.MaxPerIP <= o.MaxConnsPerIP && v.Samples > 0
	t.Add(report.Num(float64(s.Rounds), 0), report.Num(float64(s.Dialed), 0), report.Num(float64(s.Accepted), 0), report.Num(float64(s.Refused["429"]), 0),
		report.Num(float64(s.Refused["503"]), 0), report.Num(float64(s.Refused["other"]), 0),
		report.Num(float64(s.MaxPerIP), 0)+" (cap "+report.Num(float64(o.MaxConnsPerIP), 0)+")",
		report.Num(v.MaxConnsOpen, 0)+" (cap "+report.Num(float64(o.MaxConns), 0)+"; "+report.Num(float64(v.Samples), 0)+")",
		map[bool]string{true: "yes", false: "**no**"}[held])
	var per []string
	for _, r := range s.PerRound {
		per = append(per, fmt.Sprintf("%d/%d/%d", r.Accepted, r.Refused["429"], r.Refused["503"]))
	}
	t.Note = fmt.Sprintf("wsgate_conns_open (every connection the gateway holds, the %d well-behaved ones and handshakes in progress included) sampled from /metrics every %v. Per round accepted/429/503: %s.",
		r.Clients, o.Sample, strings.Join(per, ", "))
	if s.FirstError != "" {
		t.Note += " First failure without a status: " + s.FirstError + "."
	}
	return t.Markdown()
}

func stallTable(r *Result, s *StallStats, o Opts) string {
	t := &report.Table{
		Title:  fmt.Sprintf("Stall: %s stalled clients held through each abused window", report.Num(float64(o.StallConns), 0)),
		Header: []string{"kind", "opened", "closed by the gateway within the window"},
	}
	for _, k := range []string{stallHandshake, stallFrame, stallTrickle} {
		t.Add(strings.ReplaceAll(k, "_", " "), report.Num(float64(s.Opened[k]), 0), report.Num(float64(s.ClosedByServer[k]), 0))
	}
	t.Note = fmt.Sprintf("Opened over %d windows, a fresh set each, in up to %.0f ms (64 at a time) before the window starts.", r.Rounds, s.OpenMs)
	if s.FirstError != "" {
		t.Note += " First failure: " + s.FirstError + "."
	}
	return t.Markdown()
}

// roundsNote says how the windows were interleaved.
func roundsNote(rounds int) string {
	if rounds <= 1 {
		return ""
	}
	return fmt.Sprintf(", alternating in %d rounds", rounds)
}

// schedNote says how the abuser shared the host's CPUs.
func schedNote(class string) string {
	switch class {
	case SchedIdle:
		return "the abuser, which stands for clients on other machines, runs in its own process under SCHED_IDLE (`--abuser-sched idle`): its user and system time come only from CPU the others leave, so the kernel's handshake work done in its system calls waits too."
	case SchedNormal:
		return "the abuser runs in its own process at the same priority (`--abuser-sched normal`): its CPU comes out of the gateway's and the measured clients' share."
	default:
		return "the abuser runs inside wsbench, beside the measured clients."
	}
}
