// Package wait is how the harness waits: for a condition to hold, or for
// a while, and never past the run's context (Ctrl-C stops a scenario
// within a poll interval).
package wait

import (
	"context"
	"time"
)

// pollInterval is how often For checks its condition: short against the
// millisecond latencies the scenarios measure, long enough to cost nothing.
const pollInterval = 5 * time.Millisecond

// For polls cond every 5 ms until it holds, timeout passes or ctx ends; it
// reports whether cond held.
func For(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// Sleep sleeps for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
