package results

// The million scenario ("wsbench million"): one design at a time holds as
// many connections as it can (the target, 1,000,000 by default) across many
// server and load-client processes, each under the per-process open-file
// cap, and is measured while the connections are held, pinged and sent a
// broadcast.

// Host is what a run did to the host and found there: the sysctls it set
// and restored, what `wsgate doctor` said, the memory floor it kept, and
// what it left behind.
type Host struct {
	Sysctls       []SysctlChange `json:"sysctls,omitempty"`
	SysctlSkipped []SysctlChange `json:"sysctl_skipped,omitempty"` // Old holds the reason
	// Restored is true when every changed sysctl was written back.
	Restored     bool   `json:"restored"`
	RestoreError string `json:"restore_error,omitempty"`
	// LeftoverRestored lists sysctls an earlier, interrupted run had left
	// changed, put back before this run started.
	LeftoverRestored []SysctlChange `json:"leftover_restored,omitempty"`
	Doctor           *Doctor        `json:"doctor,omitempty"`

	MemFloorBytes        int64 `json:"mem_floor_bytes"`
	MemAvailableStart    int64 `json:"mem_available_start_bytes"`
	MemAvailableMinBytes int64 `json:"mem_available_min_bytes"`
	MemAvailableEnd      int64 `json:"mem_available_end_bytes"`
	// LoadAvgMax is the highest 1-minute load average seen during the run
	// (other work on the shared host).
	LoadAvgMax float64 `json:"load_avg_1m_max"`
	// SocketsLeft counts TCP sockets on the run's ports after teardown
	// (/proc/net/tcp), TimeWaitLeft those in TIME_WAIT among them (they
	// expire by themselves within 60 s); ProcessesLeft the child
	// processes still alive.
	SocketsLeft   int `json:"sockets_left"`
	TimeWaitLeft  int `json:"time_wait_left"`
	ProcessesLeft int `json:"processes_left"`
	// TCPInUse and TimeWait are /proc/net/sockstat before and after.
	TCPInUseBefore int64 `json:"tcp_inuse_before"`
	TCPInUseAfter  int64 `json:"tcp_inuse_after"`
	TimeWaitBefore int64 `json:"tcp_tw_before"`
	TimeWaitAfter  int64 `json:"tcp_tw_after"`
}

// SysctlChange is one sysctl the run wrote (Old → New).
type SysctlChange struct {
	Key string `json:"key"`
	Old string `json:"old"`
	New string `json:"new"`
}

// Doctor is `wsgate doctor`'s verdict before the run.
type Doctor struct {
	Command  string `json:"command"`
	ExitCode int    `json:"exit_code"`
	Verdict  string `json:"verdict"` // its last line
	Summary  string `json:"summary"` // "this host can hold about N connections (limited by X)"
	// Failing are the items it marked FIX or UNKNOWN.
	Failing []string `json:"failing,omitempty"`
	Output  string   `json:"output"`
}

// Million is one design's run.
type Million struct {
	Target int           `json:"target"`
	Layout MillionLayout `json:"layout"`

	// Reached is the number of connections upgraded and subscribed when
	// the ramp ended; StopReason says why it ended short of Target.
	Reached     int     `json:"reached"`
	Upgraded    int     `json:"upgraded"`
	StopReason  string  `json:"stop_reason,omitempty"`
	RampS       float64 `json:"ramp_s"`
	ConnPerSec  float64 `json:"conn_per_s"`
	FailedDials int     `json:"failed_dials"`
	// RedialedDials are failed dials the load clients started again (a
	// reconnecting client); only what still failed is in FailedDials.
	RedialedDials int `json:"redialed_dials,omitempty"`
	// AbortedDials were in flight or not started when the ramp stopped.
	AbortedDials    int    `json:"aborted_dials,omitempty"`
	FirstDialError  string `json:"first_dial_error,omitempty"`
	SubscribeErrors int    `json:"subscribe_errors"`
	// FirstSubscribeError is the first error reply to a subscribe.
	FirstSubscribeError string      `json:"first_subscribe_error,omitempty"`
	HandshakeMs         Percentiles `json:"handshake_ms"` // see MillionHandshakeNote
	ListenOverflows     int64       `json:"listen_overflows"`
	ListenDrops         int64       `json:"listen_drops"`
	// CPU of the servers, load clients and Redis from the first dial to the
	// end of the ramp, and their sum per connection reached.
	RampServerCPUS   float64 `json:"ramp_server_cpu_s"`
	RampClientCPUS   float64 `json:"ramp_client_cpu_s"`
	RedisCPURampS    float64 `json:"redis_cpu_ramp_s"`
	RampCPUUsPerConn float64 `json:"ramp_cpu_us_per_conn"`

	// ClosedByServer counts connections the server ended (any close the
	// clients saw) from the first dial to teardown; Closes by code.
	ClosedByServer int            `json:"closed_by_server"`
	Closes         map[string]int `json:"closes,omitempty"`

	// BaselinePctCore is the servers' CPU (% of one core, all of them)
	// with no connection at all, over BaselineWindowS before the ramp:
	// timers, broker probes, the runtime.
	BaselinePctCore float64 `json:"baseline_server_pct_core"`
	BaselineWindowS float64 `json:"baseline_window_s"`
	// BaselineHostPctCore is the whole host's busy CPU (% of one core: every
	// process and the kernel, /proc/stat) over the same window.
	BaselineHostPctCore float64 `json:"baseline_host_pct_core"`

	// GCRun is every collection the servers ran on their own from their
	// start to the end of the idle phase (the ramp's included); GCForced
	// the one forced in each server to measure the heap, a full
	// collection at the run's size.
	GCRun    *MillionGC `json:"gc_run,omitempty"`
	GCForced *MillionGC `json:"gc_forced,omitempty"`

	// ServerCounters sums a few counters of every server's /metrics at the
	// end of the ramp and at the end of the run (before teardown): what
	// went wrong inside them (pong and handshake timeouts, refused
	// handshakes, a Redis pub/sub connection found deaf and reconnected).
	CountersAfterRamp map[string]float64 `json:"counters_after_ramp,omitempty"`
	CountersAtEnd     map[string]float64 `json:"counters_at_end,omitempty"`

	Memory     MillionMemory      `json:"memory"`
	Hold       *MillionHold       `json:"hold,omitempty"`
	Broadcasts []MillionBroadcast `json:"broadcasts,omitempty"`
	TeardownS  float64            `json:"teardown_s"`
	Timeline   []MillionSample    `json:"timeline"`
}

// MillionHandshakeNote says how the handshake percentiles of several
// processes are combined.
const MillionHandshakeNote = "p50: median of the load-client processes' p50; p99, max: the worst process's"

// MillionLayout is how the connections were spread over processes.
type MillionLayout struct {
	FDCap int `json:"fd_cap"` // open files per process
	// Servers share one port (SO_REUSEPORT); ServerCap is each one's
	// --max-conns, MeanPerServer the planned mean, Min/MaxPerServer what
	// the kernel's spreading gave at the end of the ramp.
	Servers       int     `json:"servers"`
	ServerCap     int     `json:"server_cap"`
	MeanPerServer float64 `json:"mean_per_server"`
	MinPerServer  int     `json:"min_per_server"`
	MaxPerServer  int     `json:"max_per_server"`
	Clients       int     `json:"clients"`
	PerClient     int     `json:"per_client"` // the largest share
	Sources       int     `json:"sources"`    // loopback source addresses in all
	LocalPorts    int     `json:"local_ports"`
	// GOMAXPROCS of every child process (0: Go's default); DialRate the
	// planned connects per second over all clients (0: unpaced).
	GOMAXPROCS int     `json:"gomaxprocs"`
	DialRate   float64 `json:"dial_rate"`
}

// MillionMemory is the memory split at Conns connections. Per-connection
// numbers are (total - the processes' baseline before any connection) /
// Conns; kernel memory is host-wide and covers both ends of every
// connection (client and server socket).
type MillionMemory struct {
	Conns int `json:"conns"`

	ServerRSSBytes     int64   `json:"server_rss_bytes"`
	ServerBaseRSSBytes int64   `json:"server_base_rss_bytes"`
	ServerRSSPerConn   float64 `json:"server_rss_per_conn"`
	// The same per server, as a least-squares slope through every
	// (connections, RSS - baseline) sample of every server during the ramp:
	// the method of the idle scenario, at scale.
	ServerRSSSlope   float64 `json:"server_rss_slope"`
	ServerRSSSlopeR2 float64 `json:"server_rss_slope_r2"`
	SlopePoints      int     `json:"slope_points"`

	// Go heap in use after a forced GC in every server.
	ServerHeapBytes     int64   `json:"server_heap_bytes"`
	ServerBaseHeapBytes int64   `json:"server_base_heap_bytes"`
	ServerHeapPerConn   float64 `json:"server_heap_per_conn"`

	ClientRSSBytes     int64   `json:"client_rss_bytes"`
	ClientBaseRSSBytes int64   `json:"client_base_rss_bytes"`
	ClientRSSPerConn   float64 `json:"client_rss_per_conn"`
	RedisRSSBytes      int64   `json:"redis_rss_bytes"`

	// KernelSlabBytes is the growth of /proc/slabinfo since before the run.
	KernelSlabBytes   int64   `json:"kernel_slab_bytes"`
	KernelSlabPerConn float64 `json:"kernel_slab_per_conn"` // both sockets
	TCPMemBytes       int64   `json:"tcp_mem_bytes"`        // sockstat mem
	// MemAvailableDropBytes is how much MemAvailable fell since before the
	// run: everything above, plus page tables and whatever else moved.
	MemAvailableDropBytes int64 `json:"mem_available_drop_bytes"`
	MemAvailableBytes     int64 `json:"mem_available_bytes"`
}

// MillionHold is the idle phase: every connection held, pinged, silent.
type MillionHold struct {
	Conns        int     `json:"conns"`
	WindowS      float64 `json:"window_s"`
	PingInterval string  `json:"ping_interval"`
	// Heartbeat is who checked the idle connections: "ping" (WebSocket
	// pings) or "tcp" (the kernel's keepalive probes, wsgate --heartbeat).
	Heartbeat string `json:"heartbeat,omitempty"`

	ServerCPUS          float64 `json:"server_cpu_s"`
	ServerPctCore       float64 `json:"server_pct_core"`
	ServerPctCorePer10k float64 `json:"server_pct_core_per_10k"`
	ClientCPUS          float64 `json:"client_cpu_s"`
	ClientPctCore       float64 `json:"client_pct_core"`
	RedisCPUS           float64 `json:"redis_cpu_s"`
	// HostPctCore is the whole host's busy CPU over the window (% of one
	// core, /proc/stat): every process, the kernel's TCP timers and packet
	// work that no process is charged for, and other tenants' noise.
	HostPctCore        float64 `json:"host_pct_core"`
	HostSoftirqPctCore float64 `json:"host_softirq_pct_core"`
	// The same over the window's second half (LateWindowS), which leaves
	// out the ramp's after-effects: the memory the servers return once
	// their heap goes quiet (the trim, Go's scavenger) and the last
	// handshakes' garbage.
	LateWindowS       float64 `json:"late_window_s,omitempty"`
	ServerPctCoreLate float64 `json:"server_pct_core_late,omitempty"`
	HostPctCoreLate   float64 `json:"host_pct_core_late,omitempty"`

	// Pings the clients received (and answered) in the window.
	Pings              int64   `json:"pings"`
	PingsPerS          float64 `json:"pings_per_s"`
	ServerCPUUsPerPing float64 `json:"server_cpu_us_per_ping"`
	// ServerCPUUsPerPingNet leaves out what the servers burn with no
	// connection at all (Million.BaselinePctCore over the same window).
	ServerCPUUsPerPingNet float64 `json:"server_cpu_us_per_ping_net"`

	ClosedByServer int       `json:"closed_by_server"`
	GC             MillionGC `json:"gc"`
}

// MillionGC is the servers' garbage collections during the idle window.
type MillionGC struct {
	Source      string  `json:"source"`
	Servers     int     `json:"servers"`
	Collections int     `json:"collections"`
	PauseP50Ms  float64 `json:"pause_p50_ms"`
	PauseP99Ms  float64 `json:"pause_p99_ms"`
	PauseMaxMs  float64 `json:"pause_max_ms"`
	// Lost counts collections whose pause fell out of the runtime's
	// 256-entry ring before it was read.
	Lost int `json:"lost,omitempty"`
	// PromMaxMs is the largest go_gc_duration_seconds{quantile="1"} over
	// the servers' /metrics at the end of the window, when exported (it
	// covers the runtime's recent pauses, not only this window).
	PromMaxMs float64 `json:"prom_max_ms,omitempty"`
}

// MillionBroadcast is one publication (or a burst) to the channel every
// connection subscribed to.
type MillionBroadcast struct {
	Name              string  `json:"name"` // "one" or "burst"
	Messages          int     `json:"messages"`
	Published         int     `json:"published"`
	PublishErrors     int     `json:"publish_errors"`
	FirstPublishError string  `json:"first_publish_error,omitempty"`
	PublishMs         float64 `json:"publish_ms"` // the publish calls, first sent → last answered

	Conns         int   `json:"conns"`
	Expected      int64 `json:"expected"`
	Delivered     int64 `json:"delivered"`
	ConnsComplete int   `json:"conns_complete"` // got every message
	ConnsMissing  int   `json:"conns_missing"`  // missed at least one
	Duplicates    int64 `json:"duplicates"`

	// CompletionMs is first publish → last delivery anywhere; LatencyMs
	// the publish → delivery distribution over every delivery.
	CompletionMs float64 `json:"completion_ms"`
	LatencyMs    Latency `json:"latency_ms"`

	ServerCPUS       float64 `json:"server_cpu_s"`
	RedisCPUS        float64 `json:"redis_cpu_s"`
	ClientCPUS       float64 `json:"client_cpu_s"`
	CPUUsPerDelivery float64 `json:"cpu_us_per_delivery"` // servers + Redis
}

// MillionSample is the state T seconds after the ramp began.
type MillionSample struct {
	T                 float64 `json:"t"`
	Phase             string  `json:"phase"`
	Conns             int     `json:"conns"` // upgraded and subscribed
	Upgraded          int     `json:"upgraded"`
	Failed            int     `json:"failed"`
	ServerRSSBytes    int64   `json:"server_rss_bytes"`
	ClientRSSBytes    int64   `json:"client_rss_bytes"`
	KernelSlabBytes   int64   `json:"kernel_slab_bytes"` // growth since before the run
	TCPMemBytes       int64   `json:"tcp_mem_bytes"`
	MemAvailableBytes int64   `json:"mem_available_bytes"`
}
