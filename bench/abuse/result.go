package abuse

import (
	"github.com/wsgate/wsgate/bench/harness/results"
)

// Result is what the abuse scenario measured (--json "result").
type Result struct {
	Clients  int     `json:"clients"`
	PingRate float64 `json:"ping_rate"`
	PhaseS   float64 `json:"phase_s"`
	Rounds   int     `json:"rounds"`
	// AbuserSched is the abuser process's scheduling class: SchedIdle,
	// SchedNormal or SchedInProcess.
	AbuserSched string     `json:"abuser_sched"`
	Variants    []*Variant `json:"variants"`
}

// Variant is one gateway, measured unloaded and under one abuse.
type Variant struct {
	Variant   string     `json:"variant"`
	Flags     []string   `json:"gateway_flags"`
	Unloaded  PingResult `json:"unloaded"`
	Loaded    PingResult `json:"loaded"`
	P99Ratio  float64    `json:"p99_ratio"` // loaded / unloaded
	PoliteCut int        `json:"well_behaved_closed"`
	PingsLost int64      `json:"pings_lost"`
	// MaxConnsOpen is the largest wsgate_conns_open sampled while loaded.
	MaxConnsOpen float64 `json:"max_conns_open"`
	Samples      int     `json:"metrics_samples"`
	// CPU, % of one core: the gateway unloaded and loaded, the abuser's
	// process (0 when it runs inside wsbench).
	GatewayCPUUnloaded float64     `json:"gateway_cpu_pct_unloaded"`
	GatewayCPULoaded   float64     `json:"gateway_cpu_pct_loaded"`
	AbuserCPU          float64     `json:"abuser_cpu_pct"`
	Flood              *FloodStats `json:"flood,omitempty"`
	Storm              *StormStats `json:"storm,omitempty"`
	Stall              *StallStats `json:"stall,omitempty"`
}

// PingResult is the well-behaved clients' round trips in one phase.
type PingResult struct {
	Sent      int64               `json:"sent"`
	Answered  int64               `json:"answered"`
	Errors    int64               `json:"errors"`
	LatencyMs results.Percentiles `json:"latency_ms"`
}
