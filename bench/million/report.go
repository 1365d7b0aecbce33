package million

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
)

// Commands the run writes to a load-client process's stdin, one a line.
const (
	// CmdDial starts dialing the process's share.
	CmdDial = "dial"
	// CmdStop aborts the dials still in flight and starts no more.
	CmdStop = "stop"
	// CmdClose resets every connection (an RST: no TIME_WAIT anywhere),
	// writes the final report and waits for stdin to close.
	CmdClose = "close"
)

// Events of a Report line.
const (
	EventReady  = "ready"  // first line: the process waits for CmdDial
	EventReport = "report" // periodic
	EventFinal  = "final"  // after CmdClose: the last word
)

// MaxMessages is how many broadcast messages a client tells apart (a bit
// each per connection); later sequence numbers count as bad pushes.
const MaxMessages = 64

// Report is one stdout line of a load-client process: its whole state,
// cumulative, so a lost or late line costs nothing but freshness.
type Report struct {
	Event string `json:"event"`
	// TimeNs is when it was taken (Unix ns; the run reads it next to /proc).
	TimeNs int64 `json:"t"`
	Conns  int   `json:"conns"` // this process's share

	Dialed         bool    `json:"dialed"` // every dial has ended
	Upgraded       int     `json:"upgraded"`
	Failed         int     `json:"failed"`
	Redials        int     `json:"redials,omitempty"`
	FirstError     string  `json:"first_error,omitempty"`
	DialSeconds    float64 `json:"dial_s,omitempty"`
	HandshakeP50Ms float64 `json:"handshake_p50_ms,omitempty"`
	HandshakeP99Ms float64 `json:"handshake_p99_ms,omitempty"`
	HandshakeMaxMs float64 `json:"handshake_max_ms,omitempty"`

	Subscribed          int    `json:"subscribed"`
	SubscribeErrors     int    `json:"subscribe_errors"`
	FirstSubscribeError string `json:"first_subscribe_error,omitempty"`

	// Closed counts connections that ended before CmdClose (the server
	// closed them, or TCP did), Closes by close code.
	Closed         int         `json:"closed"`
	Closes         map[int]int `json:"closes,omitempty"`
	ProtocolErrors int         `json:"protocol_errors"`
	Pings          uint64      `json:"pings"`

	// Received maps a set of broadcast messages (bit s: sequence s) to
	// how many connections got exactly that set; Duplicates counts
	// messages a connection got again, Bad pushes that were not a stamped
	// message.
	Received   map[uint64]int  `json:"received,omitempty"`
	Duplicates int64           `json:"duplicates"`
	Bad        int64           `json:"bad"`
	Messages   []MessageReport `json:"messages,omitempty"`
}

// MessageReport is the deliveries of one broadcast message in one process.
type MessageReport struct {
	Seq uint64 `json:"seq"`
	// Latency is publish (the stamp) → delivery.
	Latency hist.Snapshot `json:"latency"`
	// LastNs is the Unix time of the latest delivery.
	LastNs int64 `json:"last_ns"`
}

// Totals adds up the latest reports of every client process.
type Totals struct {
	Processes           int
	Conns               int
	AllDialed           bool
	Upgraded            int
	Failed              int
	Redials             int
	FirstError          string
	Subscribed          int
	SubscribeErrors     int
	FirstSubscribeError string
	Closed              int
	Closes              map[int]int
	ProtocolErrors      int
	Pings               uint64
	Received            map[uint64]int
	Duplicates          int64
	Bad                 int64
	// Handshake percentiles: the median of the processes' p50, the worst
	// p99 and max (exact percentiles of the union are not reported).
	HandshakeP50Ms, HandshakeP99Ms, HandshakeMaxMs float64
	// Messages merges the per-process deliveries of each sequence number.
	Messages map[uint64]*Delivery
}

// Delivery is one broadcast message over every process.
type Delivery struct {
	Latency hist.Hist
	Last    time.Time
}

// Aggregate sums reports (nil entries: processes that have not reported).
func Aggregate(reports []*Report) Totals {
	t := Totals{AllDialed: true, Closes: map[int]int{}, Received: map[uint64]int{}, Messages: map[uint64]*Delivery{}}
	var p50s []float64
	for _, r := range reports {
		if r == nil {
			t.AllDialed = false
			continue
		}
		t.Processes++
		t.Conns += r.Conns
		t.AllDialed = t.AllDialed && r.Dialed
		t.Upgraded += r.Upgraded
		t.Failed += r.Failed
		t.Redials += r.Redials
		if t.FirstError == "" {
			t.FirstError = r.FirstError
		}
		t.Subscribed += r.Subscribed
		t.SubscribeErrors += r.SubscribeErrors
		if t.FirstSubscribeError == "" {
			t.FirstSubscribeError = r.FirstSubscribeError
		}
		t.Closed += r.Closed
		for code, n := range r.Closes {
			t.Closes[code] += n
		}
		t.ProtocolErrors += r.ProtocolErrors
		t.Pings += r.Pings
		for k, n := range r.Received {
			t.Received[k] += n
		}
		t.Duplicates += r.Duplicates
		t.Bad += r.Bad
		if r.Upgraded > 0 {
			p50s = append(p50s, r.HandshakeP50Ms)
		}
		t.HandshakeP99Ms = max(t.HandshakeP99Ms, r.HandshakeP99Ms)
		t.HandshakeMaxMs = max(t.HandshakeMaxMs, r.HandshakeMaxMs)
		for _, m := range r.Messages {
			d := t.Messages[m.Seq]
			if d == nil {
				d = &Delivery{}
				t.Messages[m.Seq] = d
			}
			d.Latency.Merge(m.Latency)
			if last := time.Unix(0, m.LastNs); last.After(d.Last) {
				d.Last = last
			}
		}
	}
	if len(p50s) > 0 {
		sort.Float64s(p50s)
		t.HandshakeP50Ms = p50s[len(p50s)/2]
	}
	return t
}

// Delivered returns the deliveries of the messages seqs.
func (t Totals) Delivered(seqs ...uint64) int64 {
	var n int64
	for _, s := range seqs {
		if d := t.Messages[s]; d != nil {
			n += int64(d.Latency.Count())
		}
	}
	return n
}

// Complete returns how many connections received every message of seqs.
func (t Totals) Complete(seqs ...uint64) int {
	var want uint64
	for _, s := range seqs {
		want |= 1 << s
	}
	c := 0
	for set, n := range t.Received {
		if set&want == want {
			c += n
		}
	}
	return c
}

// ClosesByName returns Closes with string keys (for JSON), sorted.
func (t Totals) ClosesByName() map[string]int {
	if len(t.Closes) == 0 {
		return nil
	}
	out := map[string]int{}
	for _, code := range slices.Sorted(maps.Keys(t.Closes)) {
		out[strconv.Itoa(code)] = t.Closes[code]
	}
	return out
}
