package resume

import (
	"fmt"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// summarize fills res from every client's state.
func (cl *clients) summarize(res *Result, stormStart time.Time, tops map[string]uint64) {
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
	res.MissedMean = results.Round3(float64(missed) / float64(len(cl.c)))
	if len(recovery) > 0 {
		q := loadclient.Percentiles(recovery, 50, 90, 99, 100)
		res.RecoveryMs = results.Percentiles{P50: results.Millis(q[0]), P90: results.Millis(q[1]), P99: results.Millis(q[2]), Max: results.Millis(q[3])}
	}
	if res.Recovered == len(cl.c) {
		res.AllRecoveredMs = results.Round3(last.Sub(stormStart).Seconds() * 1000)
	}
	if !lastReply.IsZero() {
		res.RepliedMs = results.Millis(lastReply.Sub(stormStart))
	}
}
