package main

import (
	"log/slog"
	"runtime/debug"
)

// defaultGCPercent is the heap growth serve allows between collections
// when GOGC is not set. A gateway's live heap is mostly its connections,
// and they allocate little once upgraded; what grows the heap is bursts
// (handshakes, broadcasts), and at Go's default of 100 RSS stays near
// twice the live heap after one. At 50, A/B runs (bench/README.md, "A
// million on 2 cores") held a third less RSS per connection at 250,000
// connections and 16 % less at a million, and fan-out and churn showed no
// CPU difference. Operators set GOGC to choose otherwise.
const defaultGCPercent = 50

// applyGCPercent sets defaultGCPercent unless GOGC is in the environment
// (lookupEnv is os.LookupEnv), which the Go runtime has already applied.
func applyGCPercent(lookupEnv func(string) (string, bool), log *slog.Logger) {
	if v, set := lookupEnv("GOGC"); set {
		log.Debug("GC percent from GOGC", "gogc", v)
		return
	}
	debug.SetGCPercent(defaultGCPercent)
}
