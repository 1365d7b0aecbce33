package resume

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/bench/harness/report"
)

// Tables renders r as the Markdown tables "wsbench resume" prints.
func Tables(r *Result) string {
	t := &report.Table{
		Title: fmt.Sprintf("Resume storm: %s clients on %s channels reconnect at once after a gateway restart (Redis broker, history %s, %g publications/s per channel)",
			report.Num(float64(r.Clients), 0), report.Num(float64(r.Channels), 0), report.Num(float64(r.HistorySize), 0), r.Rate),
		Header: []string{"", "value"},
	}
	of := func(n, m int) string { return report.Num(float64(n), 0) + " of " + report.Num(float64(m), 0) }
	msOr := func(v float64) string {
		if v <= 0 {
			return "–"
		}
		return report.Ms(v) + " ms"
	}
	t.Add("subscribed, then closed with 1001 by the drain", of(r.Subscribed, r.Clients)+", "+report.Num(float64(r.Closes1001), 0))
	t.Add("gateway down (SIGTERM → new process answering)", msOr(r.DowntimeMs))
	t.Add("publications missed per client: mean / max (total)", report.Num(r.MissedMean, 1)+" / "+report.Num(float64(r.MissedMax), 0)+" ("+report.Num(float64(r.MissedTotal), 0)+")")
	t.Add("reconnect storm: all upgraded", msOr(r.UpgradedMs))
	t.Add("all resume replies", msOr(r.RepliedMs))
	t.Add("**all recovered**", "**"+msOr(r.AllRecoveredMs)+"**")
	t.Add("per client recovered after: p50 / p90 / p99", report.Ms(r.RecoveryMs.P50)+" / "+report.Ms(r.RecoveryMs.P90)+" / "+report.Ms(r.RecoveryMs.P99)+" ms")
	t.Add("**recovered**", "**"+of(r.Recovered, r.Clients)+"**")
	t.Add("gaps / duplicates / messages before the reply", report.Num(float64(r.Gaps), 0)+" / "+report.Num(float64(r.Duplicates), 0)+" / "+report.Num(float64(r.EarlyMessages), 0))
	t.Add("published during the storm; then followed live to the last one", report.Num(float64(r.PublishedInStorm), 0)+"; "+of(r.TailComplete, r.Recovered))
	if r.Redis != nil {
		t.Add("**Redis calls per recovered client** (of which FCALL)", "**"+report.Num(r.Redis.NetPerClient, 2)+"** ("+report.Num(r.Redis.FcallPerClient, 2)+")")
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
	t.Note = strings.Join(notes, " ")
	out := t.Markdown()
	if r.Redis != nil {
		rt := &report.Table{
			Title:  fmt.Sprintf("Redis calls during the storm (%s ms, INFO commandstats deltas)", report.Ms(r.Redis.WindowMs)),
			Header: []string{"command", "calls", "publisher's share", "recovery", "per recovered client"},
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
			rt.Add(n, report.Num(float64(r.Redis.Calls[n]), 0), report.Num(r.Redis.Publisher[n], 0), report.Num(r.Redis.Net[n], 0), report.Num(per, 3))
			sum += float64(r.Redis.Calls[n])
			pubSum += r.Redis.Publisher[n]
		}
		rt.Add("**all**", report.Num(sum, 0), report.Num(pubSum, 0), report.Num(sum-pubSum, 0), report.Num(r.Redis.NetPerClient, 2))
		rt.Note = fmt.Sprintf("Calls include commands run inside functions (wsgate_history, wsgate_publish, …). The publisher's share is the window's %s publications × the calls one publication cost when measured alone. total_commands_processed grew by %s (it counts functions' inner commands too). FCALLs per recovered client: %s.",
			report.Num(float64(r.PublishedInStorm), 0), report.Num(float64(r.Redis.TotalProcessed), 0), report.Num(r.Redis.FcallPerClient, 2))
		out += rt.Markdown()
	}
	return out
}
