package api

import (
	"log/slog"
	"sync"
	"time"
)

// failureReportEvery is how often a continuing outage is logged again.
const failureReportEvery = 10 * time.Second

// failureLog logs Backend failures once per state change, not once per
// request: the first failure of an outage, then a count every
// reportEvery while it lasts, then one line when a call succeeds again.
// During a broker outage every API call fails; a line per call would
// bury everything else in the log.
//
// Any 5xx is a failure, but only a call that needed the broker or the
// presence store and got its answer is a success: publish, disconnect,
// unsubscribe (relayed through the broker), presence, presence_stats,
// history, and a broadcast that published to a channel with no channel
// failing (broadcastSucceeded). info and channels never ask them and
// succeed during an outage too: counting them would end the outage and
// start a new one on the next failure, two lines per request again.
type failureLog struct {
	log         *slog.Logger
	reportEvery time.Duration
	now         func() time.Time

	mu         sync.Mutex
	failing    bool
	since      time.Time // the outage's first failure
	count      int       // failures since the outage began
	unreported int       // failures since the last line
	lastLine   time.Time
}

func newFailureLog(log *slog.Logger, reportEvery time.Duration, now func() time.Time) *failureLog {
	return &failureLog{log: log, reportEvery: reportEvery, now: now}
}

// failed records a failed Backend call of method.
func (f *failureLog) failed(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.count++
	f.unreported++
	switch {
	case !f.failing:
		f.failing, f.since, f.count, f.unreported, f.lastLine = true, now, 1, 0, now
		f.log.Warn("api: backend calls failing", "method", method, "err", err)
	case now.Sub(f.lastLine) >= f.reportEvery:
		f.log.Warn("api: backend calls still failing", "failed", f.unreported,
			"in", now.Sub(f.lastLine).Round(time.Millisecond), "last_method", method, "last_err", err)
		f.unreported, f.lastLine = 0, now
	}
}

// succeeded records a call that reached the broker or presence store and
// succeeded; it ends an outage.
func (f *failureLog) succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing {
		return
	}
	f.log.Info("api: backend calls succeed again", "failed", f.count, "for", f.now().Sub(f.since).Round(time.Millisecond))
	f.failing = false
}
