// Package results is the shape of everything a wsbench run measured: the
// JSON written by --json, read back by "wsbench project" and rendered by
// the report. Field names are the contract; raw points travel with every
// fitted slope so a reader can redo the fit.
package results

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/wsgate/wsgate/bench/harness/fit"
	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// Design names.
const (
	Wsgate     = "wsgate"
	Naive      = "naive"
	Centrifugo = "centrifugo" // github.com/centrifugal/centrifugo, see bench/centrifugo
	Floor      = "floor"      // the bare loops of the fan-out and idle scenarios (bench/floor)
)

// How a fan-out run's server compressed (Fanout.Compression).
const (
	// CompressionShared: wsgate compresses a publication once per
	// encoding and every compressing subscriber gets the same frame.
	CompressionShared = "shared"
	// CompressionPrepared: the naive server frames a publication once as
	// gorilla's PreparedMessage, which compresses it once too.
	CompressionPrepared = "prepared"
	// CompressionPerConnection: the naive server writes the payload to
	// each connection and gorilla compresses it there, once per
	// subscriber per message (as gorilla's users run it).
	CompressionPerConnection = "per-connection"
)

// Run is one wsbench invocation.
type Run struct {
	Command string         `json:"command"`
	Date    string         `json:"date"` // RFC 3339, UTC
	Seconds float64        `json:"seconds"`
	Machine procfs.Machine `json:"machine"`
	// LoadAvgEnd is the 1-minute load average when the run ended (the
	// start's is in Machine).
	LoadAvgEnd float64   `json:"load_avg_1m_end"`
	Designs    []*Design `json:"designs"`
	// Projection is filled from the idle slopes when idle ran.
	Projection []Projection `json:"projection,omitempty"`
	// Problems lists what went wrong (a server that crashed, dials that
	// failed, deliveries that never arrived): numbers next to a problem
	// are suspect.
	Problems []string `json:"problems,omitempty"`
	// Host is what a run that prepares the host (million) did to it.
	Host *Host `json:"host,omitempty"`
}

// Design holds one design's results, scenario by scenario.
type Design struct {
	Design string    `json:"design"`
	Idle   *Idle     `json:"idle,omitempty"`
	Fanout []*Fanout `json:"fanout,omitempty"`
	Churn  *Churn    `json:"churn,omitempty"`
	Slow   *Slow     `json:"slow,omitempty"`
	// Million is the many-process scenario (wsbench million).
	Million *Million `json:"million,omitempty"`
}

// NewRun starts a Run for the given command line.
func NewRun(command string, m procfs.Machine, now time.Time) *Run {
	return &Run{Command: command, Date: now.UTC().Format(time.RFC3339), Machine: m}
}

// Design returns the entry for name, adding it when missing.
func (r *Run) Design(name string) *Design {
	for _, d := range r.Designs {
		if d.Design == name {
			return d
		}
	}
	d := &Design{Design: name}
	r.Designs = append(r.Designs, d)
	return d
}

// Find returns the entry for name or nil.
func (r *Run) Find(name string) *Design {
	for _, d := range r.Designs {
		if d.Design == name {
			return d
		}
	}
	return nil
}

// Problem records something that went wrong.
func (r *Run) Problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Write writes r as indented JSON to path.
func (r *Run) Write(path string) error { return WriteJSON(path, r) }

// WriteJSON writes v as indented JSON to path: a Run, or a Run with the
// result of a scenario of its own shape (resume, abuse) beside it.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Round3 rounds v to three decimals, the precision every number of the
// JSON is written with.
func Round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Millis is d in milliseconds, to the microsecond.
func Millis(d time.Duration) float64 { return Round3(d.Seconds() * 1000) }

// Read reads a Run written by Write.
func Read(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// IdlePoint is one measurement of a server holding Conns idle connections.
type IdlePoint struct {
	Conns          int   `json:"conns"`
	RSSBytes       int64 `json:"rss_bytes"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes"` // after a forced GC
	Goroutines     int   `json:"goroutines"`
	Threads        int   `json:"threads"`
	FDs            int   `json:"fds"`
	// Host-wide kernel memory: every slab cache, and pages charged to TCP
	// buffers (/proc/net/sockstat "mem"). Both include the client's
	// sockets, which mirror the server's one for one.
	KernelSlabBytes int64 `json:"kernel_slab_bytes"`
	TCPMemBytes     int64 `json:"tcp_mem_bytes"`
	// Dial is the load client's summary for the connections added to
	// reach this point (nil for the baseline).
	Dial *loadclient.Summary `json:"dial,omitempty"`
}

// Idle is the idle-connections scenario.
type Idle struct {
	// Points starts with the baseline (no client connection).
	Points []IdlePoint `json:"points"`
	// Channel, when set, is the channel every connection subscribed to
	// (wsbench idle --subscribe); otherwise they subscribed to nothing.
	Channel    string `json:"subscribed_channel,omitempty"`
	Subscribed int    `json:"subscribed,omitempty"` // connections whose subscribe succeeded

	// Slopes over the points with connections (see Fits for the lines).
	RSSBytesPerConn    float64             `json:"rss_bytes_per_conn"`
	HeapBytesPerConn   float64             `json:"heap_bytes_per_conn"`
	GoroutinesPerConn  float64             `json:"goroutines_per_conn"`
	ThreadsPerConn     float64             `json:"threads_per_conn"`
	FDsPerConn         float64             `json:"fds_per_conn"`
	KernelBytesPerConn float64             `json:"kernel_bytes_per_conn"`  // slab slope / 2: one server socket's share
	TCPMemBytesPerConn float64             `json:"tcp_mem_bytes_per_conn"` // sockstat mem slope / 2
	Fits               map[string]fit.Line `json:"fits"`

	// Dialing: connect rate and handshake latency of the largest step.
	ConnectRate float64     `json:"connect_rate"`
	HandshakeMs Percentiles `json:"handshake_ms"`

	IdleCPU *IdleCPU `json:"idle_cpu,omitempty"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// IdleCPU is the server's CPU time while holding Conns idle connections
// with pings on.
type IdleCPU struct {
	Conns        int    `json:"conns"`
	PingInterval string `json:"ping_interval"`
	// Heartbeat is wsgate's --heartbeat ("tcp": the kernel's keepalive
	// probes, no pings; empty: WebSocket pings).
	Heartbeat string  `json:"heartbeat,omitempty"`
	WindowS   float64 `json:"window_s"`
	CPUS      float64 `json:"cpu_s"`
	// PctCorePer10k is CPUS/WindowS as a percentage of one core, scaled
	// to 10,000 connections.
	PctCorePer10k float64 `json:"pct_core_per_10k"`
	// Pings the clients answered in the window, CPUS per ping, and that
	// as a multiple of the heartbeat floor's in the same run.
	Pings        int64   `json:"pings"`
	CPUUsPerPing float64 `json:"cpu_us_per_ping,omitempty"`
	CPUVsFloor   float64 `json:"cpu_vs_floor,omitempty"`
}

// Fanout is one fan-out variant (a channel layout, and with fanout
// --compression a payload and a way of compressing) of one design.
type Fanout struct {
	Variant  string `json:"variant"`
	Subs     int    `json:"subs"`
	Channels int    `json:"channels"`
	// Document: the JSON document of fanout --compression was the payload.
	Document bool `json:"document,omitempty"`
	// Compression is how the server compressed pushes to subscribers that
	// negotiated permessage-deflate: one of the Compression constants, ""
	// when they offered none.
	Compression string `json:"compression,omitempty"`
	// PushBytes is the mean payload size of the frames received (the
	// WebSocket header adds 2).
	PushBytes float64       `json:"push_bytes"`
	Modes     []*FanoutMode `json:"modes"`
}

// Mode returns the variant's result for mode (nil when absent).
func (f *Fanout) Mode(mode string) *FanoutMode {
	for _, m := range f.Modes {
		if m.Mode == mode {
			return m
		}
	}
	return nil
}

// FanoutMode is one way of publishing: at a fixed rate or in bursts.
type FanoutMode struct {
	Mode string `json:"mode"` // "rate", "burst", or "burst-coalesced" (floor only)
	// Rate: publish rounds per second (each round publishes one message
	// on every channel). Burst: messages back to back per channel, Bursts
	// times.
	Rate   float64 `json:"rate,omitempty"`
	Burst  int     `json:"burst,omitempty"`
	Bursts int     `json:"bursts,omitempty"`

	Published          int     `json:"published"`
	PublishErrors      int     `json:"publish_errors"`
	ExpectedDeliveries int64   `json:"expected_deliveries"`
	Delivered          int64   `json:"delivered"`
	Seconds            float64 `json:"seconds"` // first publish → last delivery
	DeliveredPerSec    float64 `json:"delivered_per_s"`

	ServerCPUS        float64 `json:"server_cpu_s"`
	CPUUsPerDelivery  float64 `json:"cpu_us_per_delivery"`
	WriteSyscalls     int64   `json:"write_syscalls"` // /proc/<pid>/io syscw delta
	WritesPerDelivery float64 `json:"writes_per_delivery"`
	Writevs           int64   `json:"writevs,omitempty"` // wsgate_writev_total delta, when exported
	CPUVsFloor        float64 `json:"cpu_vs_floor,omitempty"`
	// WireBytesPerDelivery: bytes the subscribers read from their sockets
	// during the phase, over deliveries (frame headers included).
	WireBytesPerDelivery float64 `json:"wire_bytes_per_delivery,omitempty"`
	LatencyMs            Latency `json:"latency_ms"`
}

// Latency summarizes a latency histogram.
type Latency struct {
	Percentiles
	Mean    float64      `json:"mean"`
	Samples uint64       `json:"samples"`
	CDF     []hist.Point `json:"cdf,omitempty"`
}

// LatencyOf summarizes h, keeping a CDF of up to cdfPoints points.
func LatencyOf(h *hist.Hist, cdfPoints int) Latency {
	q := h.Percentiles(50, 90, 99, 99.9)
	return Latency{
		Percentiles: Percentiles{P50: ms(q[0]), P90: ms(q[1]), P99: ms(q[2]), P999: ms(q[3]), Max: ms(h.Max())},
		Mean:        ms(h.Mean()),
		Samples:     h.Count(),
		CDF:         h.CDF(cdfPoints),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Churn is the connect/disconnect storm.
type Churn struct {
	Conns  int          `json:"conns"`
	Rounds []ChurnRound `json:"rounds"`
	// AcceptedPerSec is the mean connect rate over the rounds; Errors the
	// failed dials over all rounds.
	AcceptedPerSec  float64 `json:"accepted_per_s"`
	Errors          int     `json:"errors"`
	ListenOverflows int64   `json:"listen_overflows"`
}

// ChurnRound is one storm.
type ChurnRound struct {
	Connected       int         `json:"connected"`
	Failed          int         `json:"failed"`
	FirstError      string      `json:"first_error,omitempty"`
	Seconds         float64     `json:"seconds"`
	ConnPerSec      float64     `json:"conn_per_s"`
	HandshakeMs     Percentiles `json:"handshake_ms"`
	ListenOverflows int64       `json:"listen_overflows"`
	ListenDrops     int64       `json:"listen_drops"`
}

// Slow is the slow-consumer scenario.
type Slow struct {
	Readers      int     `json:"readers"`
	Slow         int     `json:"slow"`
	PayloadBytes int     `json:"payload_bytes"`
	Rate         float64 `json:"rate"`
	PhaseS       float64 `json:"phase_s"`
	// Rounds: each phase was split into this many windows, alternating
	// readers alone and readers with fresh non-readers (0 or 1: one of each).
	Rounds int `json:"rounds,omitempty"`
	// Readers' latency without, then with, the non-reading subscribers.
	Baseline SlowPhase `json:"baseline"`
	WithSlow SlowPhase `json:"with_slow"`
	// SlowClosed: connections the server closed as slow consumers or for
	// unanswered pings during the second phase (wsgate_slow_consumers_total
	// plus wsgate_pong_timeouts_total deltas; the readers stay open).
	SlowClosed int64 `json:"slow_closed"`
	// RSS samples over both phases; PeakRSSBytes the largest.
	RSS          []RSSSample `json:"rss"`
	PeakRSSBytes int64       `json:"peak_rss_bytes"`
	BaseRSSBytes int64       `json:"base_rss_bytes"` // at the start of the baseline phase
}

// SlowPhase is one publishing phase of the slow scenario.
type SlowPhase struct {
	Published          int     `json:"published"`
	ExpectedDeliveries int64   `json:"expected_deliveries"`
	Delivered          int64   `json:"delivered"`
	ReaderCloses       int     `json:"reader_closes"` // readers the server closed (should be 0)
	LatencyMs          Latency `json:"latency_ms"`
}

// RSSSample is the server's RSS T seconds into the scenario.
type RSSSample struct {
	T     float64 `json:"t"`
	Bytes int64   `json:"bytes"`
	Phase string  `json:"phase"`
}

// Projection is one design's budget for Conns idle connections, from the
// idle slopes: memory = intercept + slope × conns for the process, plus
// the kernel's per-socket memory, which no RSS shows.
type Projection struct {
	Design      string  `json:"design"`
	Conns       int     `json:"conns"`
	RSSBytes    float64 `json:"rss_bytes"`
	HeapBytes   float64 `json:"heap_bytes"`
	KernelBytes float64 `json:"kernel_bytes"`
	TotalBytes  float64 `json:"total_bytes"`
	FDs         float64 `json:"fds"`
	Goroutines  float64 `json:"goroutines"`
	Threads     float64 `json:"threads"`
	// MeasuredUpTo is the largest measured size: everything beyond is a
	// straight-line extrapolation.
	MeasuredUpTo int `json:"measured_up_to"`
}

// Project extrapolates d's idle fits to conns connections; ok is false when
// d has no idle fits.
func Project(d *Design, conns int) (Projection, bool) {
	if d == nil || d.Idle == nil || len(d.Idle.Fits) == 0 {
		return Projection{}, false
	}
	f := d.Idle.Fits
	n := float64(conns)
	p := Projection{
		Design:      d.Design,
		Conns:       conns,
		RSSBytes:    f[FitRSS].At(n),
		HeapBytes:   f[FitHeap].At(n),
		KernelBytes: d.Idle.KernelBytesPerConn * n,
		FDs:         f[FitFDs].At(n),
		Goroutines:  f[FitGoroutines].At(n),
		Threads:     f[FitThreads].At(n),
	}
	// TCP buffer pages of idle sockets are ~0; they are added when not.
	p.KernelBytes += max(d.Idle.TCPMemBytesPerConn, 0) * n
	p.TotalBytes = p.RSSBytes + p.KernelBytes
	for _, pt := range d.Idle.Points {
		p.MeasuredUpTo = max(p.MeasuredUpTo, pt.Conns)
	}
	return p, true
}

// Keys of Idle.Fits.
const (
	FitRSS        = "rss_bytes"
	FitHeap       = "heap_inuse_bytes"
	FitGoroutines = "goroutines"
	FitThreads    = "threads"
	FitFDs        = "fds"
	FitSlab       = "kernel_slab_bytes"
	FitTCPMem     = "tcp_mem_bytes"
)

// FitIdle fills idle's slopes from its points (those with connections).
func FitIdle(idle *Idle) error {
	var xs []float64
	cols := map[string][]float64{}
	for _, p := range idle.Points {
		if p.Conns == 0 {
			continue
		}
		xs = append(xs, float64(p.Conns))
		cols[FitRSS] = append(cols[FitRSS], float64(p.RSSBytes))
		cols[FitHeap] = append(cols[FitHeap], float64(p.HeapInuseBytes))
		cols[FitGoroutines] = append(cols[FitGoroutines], float64(p.Goroutines))
		cols[FitThreads] = append(cols[FitThreads], float64(p.Threads))
		cols[FitFDs] = append(cols[FitFDs], float64(p.FDs))
		cols[FitSlab] = append(cols[FitSlab], float64(p.KernelSlabBytes))
		cols[FitTCPMem] = append(cols[FitTCPMem], float64(p.TCPMemBytes))
	}
	idle.Fits = map[string]fit.Line{}
	for k, ys := range cols {
		l, err := fit.Linear(xs, ys)
		if err != nil {
			return fmt.Errorf("fit %s: %w", k, err)
		}
		idle.Fits[k] = l
	}
	idle.RSSBytesPerConn = idle.Fits[FitRSS].Slope
	idle.HeapBytesPerConn = idle.Fits[FitHeap].Slope
	idle.GoroutinesPerConn = idle.Fits[FitGoroutines].Slope
	idle.ThreadsPerConn = idle.Fits[FitThreads].Slope
	idle.FDsPerConn = idle.Fits[FitFDs].Slope
	// Each connection is two sockets on this host, the client's and the
	// server's, with the same kernel objects: half is the server's.
	idle.KernelBytesPerConn = idle.Fits[FitSlab].Slope / 2
	idle.TCPMemBytesPerConn = idle.Fits[FitTCPMem].Slope / 2
	return nil
}
