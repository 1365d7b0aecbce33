package pubsub

import (
	"fmt"
	"strconv"
	"strings"
)

// Result is a run's verdict, printed by "wsbench pubsub" as one JSON line.
type Result struct {
	OK              bool   `json:"ok"`
	Mode            Mode   `json:"mode"`
	Channels        int    `json:"channels"`
	Subscribers     int    `json:"subscribers"` // reading subscribers
	JSONSubscribers int    `json:"json_subscribers"`
	Publishers      int    `json:"publishers"`
	Size            int    `json:"size"`
	MaxLag          int    `json:"max_lag,omitempty"`
	Publications    uint64 `json:"publications"` // accepted by the gateways

	ExpectedDeliveries uint64 `json:"expected_deliveries"`
	Delivered          uint64 `json:"delivered"` // publications received, duplicates included
	Duplicates         uint64 `json:"duplicates"`
	Missing            uint64 `json:"missing"`
	// Announced: missing publications a gap push told the subscriber about
	// (lost on the way, history no longer had them); Missing − Announced
	// were lost silently.
	Announced        uint64 `json:"announced"`
	OutOfOrder       uint64 `json:"out_of_order"`
	OffsetViolations uint64 `json:"offset_violations"`
	CrossChannel     uint64 `json:"cross_channel"`
	// Unexpected: received publications that were never accepted.
	Unexpected uint64 `json:"unexpected"`
	// BadFrames: frames a subscriber could not decode or attribute.
	BadFrames uint64 `json:"bad_frames"`
	// Retries: publishes answered 107 and sent again.
	Retries uint64 `json:"retries"`

	// ReaderCloses: reading subscribers the gateway closed during the run,
	// by close code (should be empty).
	ReaderCloses map[string]int `json:"reader_closes,omitempty"`
	// NonReaderCloses: how each non-reader ended once it read again: a
	// close code, "1006" for no close frame, or "open" (not closed).
	NonReaderCloses map[string]int `json:"non_reader_closes"`

	Latency LatencyMs `json:"latency_ms"`
	// SetupS: connecting and subscribing. ElapsedS: first publish until
	// every subscriber had everything (or the wait gave up).
	SetupS        float64 `json:"setup_s"`
	ElapsedS      float64 `json:"elapsed_s"`
	DeliveredPerS float64 `json:"delivered_per_s"`

	// Reason says why OK is false.
	Reason string `json:"reason,omitempty"`
}

// countersOK reports whether every correctness counter is clean.
func (r *Result) countersOK() bool {
	return r.Delivered == r.ExpectedDeliveries && r.Duplicates == 0 && r.Missing == 0 &&
		r.OutOfOrder == 0 && r.OffsetViolations == 0 && r.CrossChannel == 0 &&
		r.Unexpected == 0 && r.BadFrames == 0 && len(r.ReaderCloses) == 0
}

// counterReasons names each non-zero correctness counter.
func (r *Result) counterReasons() []string {
	var out []string
	add := func(n uint64, what string) {
		if n != 0 {
			out = append(out, strconv.FormatUint(n, 10)+" "+what)
		}
	}
	if r.Delivered != r.ExpectedDeliveries {
		out = append(out, fmt.Sprintf("delivered %d of %d expected", r.Delivered, r.ExpectedDeliveries))
	}
	add(r.Missing, "missing")
	add(r.Duplicates, "duplicates")
	add(r.OutOfOrder, "out of order")
	add(r.OffsetViolations, "offset violations")
	add(r.CrossChannel, "cross-channel")
	add(r.Unexpected, "unexpected (never accepted)")
	add(r.BadFrames, "bad frames")
	if len(r.ReaderCloses) > 0 {
		out = append(out, fmt.Sprintf("reading subscribers closed by the gateway: %v", r.ReaderCloses))
	}
	return out
}

// finish sets OK and Reason from the counters and the problems seen.
func (r *Result) finish(problems []string, nProblems int) {
	reasons := r.counterReasons()
	reasons = append(reasons, problems...)
	if nProblems > len(problems) {
		reasons = append(reasons, fmt.Sprintf("(%d more problems)", nProblems-len(problems)))
	}
	r.OK = r.countersOK() && nProblems == 0
	if !r.OK {
		r.Reason = strings.Join(reasons, "; ")
	}
}
