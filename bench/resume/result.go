package resume

import "github.com/wsgate/wsgate/bench/harness/results"

// Result is what the scenario measured (--json "result").
type Result struct {
	Clients     int     `json:"clients"`
	Channels    int     `json:"channels"`
	HistorySize int     `json:"history_size"`
	Rate        float64 `json:"rate_per_channel"`
	// Before the restart.
	Subscribed int         `json:"subscribed"`
	Published  int64       `json:"published_before_restart"`
	Closes1001 int         `json:"closed_by_drain"`
	Closes     map[int]int `json:"closes_at_restart"`
	// DowntimeMs: SIGTERM to the new process answering.
	DowntimeMs float64 `json:"downtime_ms"`
	// The reconnect storm, from its first dial.
	Reconnected    int     `json:"reconnected"`
	UpgradedMs     float64 `json:"all_upgraded_ms"`
	RepliedMs      float64 `json:"all_replied_ms"`
	AllRecoveredMs float64 `json:"all_recovered_ms"` // 0 when not all recovered
	// Per-client time from the storm's start to recovered.
	RecoveryMs    results.Percentiles `json:"recovery_ms"`
	Recovered     int                 `json:"recovered"`
	NotRecovered  map[string]int      `json:"not_recovered,omitempty"` // by reason
	Incomplete    int                 `json:"incomplete"`              // recovered:true but offsets missing at the timeout
	MissedMean    float64             `json:"missed_mean"`
	MissedMax     uint64              `json:"missed_max"`
	MissedTotal   uint64              `json:"missed_total"`
	GapsBefore    int                 `json:"gaps_before_restart"` // and duplicates
	Gaps          int                 `json:"gaps"`
	Duplicates    int                 `json:"duplicates"`
	EarlyMessages int                 `json:"messages_before_reply"`
	TailComplete  int                 `json:"tail_complete"` // clients with every publication up to the last
	// Anomalies describes some gaps and duplicates: channel, offset, when.
	Anomalies        []string  `json:"anomalies,omitempty"`
	PublishedInStorm int64     `json:"published_during_storm"`
	Redis            *RedisOps `json:"redis,omitempty"`
}

// RedisOps is the Redis work during the reconnect storm.
type RedisOps struct {
	WindowMs float64 `json:"window_ms"`
	// Calls counts commandstats calls in the window, by command (functions'
	// inner commands included, INFO excluded).
	Calls map[string]int64 `json:"calls"`
	// PerPublish is the calls one publication costs (measured before the
	// clients connected); Publisher the calls the window's publications
	// account for; Net = Calls − Publisher.
	PerPublish map[string]float64 `json:"per_publish"`
	Publisher  map[string]float64 `json:"publisher"`
	Net        map[string]float64 `json:"net"`
	// TotalProcessed is the total_commands_processed delta (INFO excluded).
	TotalProcessed int64   `json:"total_commands_processed"`
	NetPerClient   float64 `json:"net_calls_per_recovered_client"`
	// FcallPerClient: FCALLs (the gateway's round trips to Redis functions)
	// per recovered client, net of the publisher's.
	FcallPerClient float64 `json:"net_fcalls_per_recovered_client"`
}
