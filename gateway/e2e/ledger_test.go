package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// What every application connection saw (clientLog) and what every
// publisher was told (ledger), and the check of the delivery contract
// between the two: every acknowledged publication reaches every subscriber
// of its channel exactly once and in offset order, or the subscriber was
// told it missed it (gap push, resume not recovered, epoch change).

type noticeKind string

const (
	noticeGap          noticeKind = "gap"
	noticeNotRecovered noticeKind = "not recovered"
	noticeEpoch        noticeKind = "epoch changed"
)

// openEnd closes a notice's range that reaches past anything published.
const openEnd = math.MaxUint64

// notice says a subscriber missed offsets from…to (inclusive) of one epoch.
type notice struct {
	kind     noticeKind
	channel  string
	epoch    string
	from, to uint64
	reason   string
}

func (n notice) covers(ch, epoch string, off uint64) bool {
	return n.channel == ch && n.epoch == epoch && off >= n.from && off <= n.to
}

type delivery struct {
	epoch  string
	offset uint64
	id     string // the publication's id, from its data
}

// clientLog is one application connection's record. The client calls it
// from its own goroutines; the checks read it after the client stopped.
type clientLog struct {
	mu         sync.Mutex
	start      map[string]position // first subscribe: expected from after here
	deliveries map[string][]delivery
	notices    []notice
	repeats    int // repeated offsets the client dropped (allowed by §10)
	resubs     int
	anomalies  []string
	// Connection history.
	connects        int
	down            time.Time // when the current outage began (zero: connected)
	longestDown     time.Duration
	handshakeErrors map[string]int
	gaveUpAfter     int // > 0: the reconnect budget ran out
	closeCodes      map[int]int
}

func newClientLog() *clientLog {
	return &clientLog{start: map[string]position{}, deliveries: map[string][]delivery{},
		handshakeErrors: map[string]int{}, closeCodes: map[int]int{}}
}

func (l *clientLog) connected(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connects++
	if !l.down.IsZero() {
		l.longestDown = max(l.longestDown, at.Sub(l.down))
		l.down = time.Time{}
	}
}

func (l *clientLog) disconnected(at time.Time, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = at
	l.closeCodes[code]++
}

func (l *clientLog) handshakeFailed(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handshakeErrors[why]++
}

func (l *clientLog) gaveUp(attempts int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gaveUpAfter = attempts
}

func (l *clientLog) subscribed(ch, epoch string, offset uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start[ch] = position{epoch: epoch, offset: offset}
}

func (l *clientLog) resubscribed(string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resubs++
}

func (l *clientLog) notice(n notice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notices = append(l.notices, n)
}

func (l *clientLog) repeat() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.repeats++
}

func (l *clientLog) anomaly(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.anomalies = append(l.anomalies, fmt.Sprintf(format, args...))
}

// delivered records a message the application received; its data is the
// publisher's {"id": …}.
func (l *clientLog) delivered(ch, epoch string, offset uint64, data json.RawMessage) {
	var body struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &body) // an empty id is a wrong-data finding later
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliveries[ch] = append(l.deliveries[ch], delivery{epoch: epoch, offset: offset, id: body.ID})
}

// ackedPub is one acknowledged publication.
type ackedPub struct {
	epoch  string
	offset uint64
	id     string
	source string
}

// ledger collects what publishers were told.
type ledger struct {
	mu       sync.Mutex
	acked    map[string][]ackedPub // by channel
	attempts map[string]int        // by source
	ackCount map[string]int
	replayed map[string]int
	failed   map[string]map[string]int // source → reason → count

	outstanding int // begun, outcome not yet recorded
}

func newLedger() *ledger {
	return &ledger{acked: map[string][]ackedPub{}, attempts: map[string]int{}, ackCount: map[string]int{},
		replayed: map[string]int{}, failed: map[string]map[string]int{}}
}

// begin counts one publication attempt by source and returns the callback
// that records its outcome.
func (l *ledger) begin(source, channel, id string) func(pubOutcome) {
	l.mu.Lock()
	l.attempts[source]++
	l.outstanding++
	l.mu.Unlock()
	var once sync.Once
	return func(o pubOutcome) {
		once.Do(func() { l.record(source, channel, id, o) })
	}
}

// settled: every publication begun has its outcome. A client's publish is
// asynchronous, so stopping the publishers leaves some in flight; until
// they settle, the top offset of a channel may still grow.
func (l *ledger) settled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outstanding == 0
}

func (l *ledger) record(source, channel, id string, o pubOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outstanding--
	if !o.acked {
		if l.failed[source] == nil {
			l.failed[source] = map[string]int{}
		}
		l.failed[source][shortReason(o.err)]++
		return
	}
	l.ackCount[source]++
	if o.replayed {
		l.replayed[source]++
	}
	l.acked[channel] = append(l.acked[channel], ackedPub{epoch: o.epoch, offset: o.offset, id: id, source: source})
}

// shortReason keeps error kinds countable (no addresses or ids).
func shortReason(s string) string {
	if i := strings.IndexAny(s, "0123456789"); i > 0 && strings.HasPrefix(s, "HTTP ") {
		return s
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// top returns the highest acknowledged offset of channel in epoch.
func (l *ledger) top(channel, epoch string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var top uint64
	for _, p := range l.acked[channel] {
		if p.epoch == epoch {
			top = max(top, p.offset)
		}
	}
	return top
}

// verdict is the contract check over every subscriber.
type verdict struct {
	Subscriptions int
	Expected      int // (subscriber, acknowledged publication) pairs
	Delivered     int
	Noticed       int // missed, but announced
	SilentLosses  int
	Duplicates    int // a publication delivered twice (under two offsets)
	WrongData     int // the offset carried another publication's data
	OutOfOrder    int
	Repeats       int // repeated offsets dropped by the client (allowed)
	Unacked       int // deliveries of publications whose ack never came
	Holes         int // offsets skipped without a notice, acknowledged or not
	Notices       map[noticeKind]int
	Anomalies     int
	Examples      []string // the first few findings, for the failure message
	ConflictAcks  int      // one offset acknowledged for two publications
}

func (v *verdict) example(format string, args ...any) {
	if len(v.Examples) < 12 {
		v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
	}
}

// check compares every client's deliveries with the ledger.
func (l *ledger) check(logs []*clientLog, channelsOf func(i int) []string) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := verdict{Notices: map[noticeKind]int{}}
	byPos := map[string]map[string]ackedPub{} // channel → "epoch/offset" → pub
	for ch, pubs := range l.acked {
		byPos[ch] = map[string]ackedPub{}
		for _, p := range pubs {
			k := p.epoch + "/" + fmt.Sprint(p.offset)
			if q, dup := byPos[ch][k]; dup && q.id != p.id {
				v.ConflictAcks++
				v.example("%s %s acknowledged for %s and %s", ch, k, q.id, p.id)
			}
			byPos[ch][k] = p
		}
	}
	for i, cl := range logs {
		cl.mu.Lock()
		v.Repeats += cl.repeats
		v.Anomalies += len(cl.anomalies)
		for _, a := range cl.anomalies {
			v.example("client %d: %s", i, a)
		}
		for _, n := range cl.notices {
			v.Notices[n.kind]++
		}
		for _, ch := range channelsOf(i) {
			v.Subscriptions++
			checkSubscription(&v, i, ch, cl, l.acked[ch], byPos[ch])
		}
		cl.mu.Unlock()
	}
	return v
}

// checkSubscription checks one client's channel against the acknowledged
// publications of that channel.
func checkSubscription(v *verdict, client int, ch string, cl *clientLog, acked []ackedPub, byPos map[string]ackedPub) {
	start, ok := cl.start[ch]
	if !ok {
		v.example("client %d never subscribed to %s", client, ch)
		v.SilentLosses += len(acked)
		return
	}
	got := map[string]delivery{}
	seen := map[string]int{}
	var prev *delivery
	for k, d := range cl.deliveries[ch] {
		key := d.epoch + "/" + fmt.Sprint(d.offset)
		got[key] = d
		seen[d.id]++
		if seen[d.id] == 2 {
			v.Duplicates++
			v.example("client %d %s: publication %s delivered twice (offset %d)", client, ch, d.id, d.offset)
		}
		if _, ok := byPos[key]; !ok {
			v.Unacked++
		}
		from := start.offset
		if prev != nil && prev.epoch == d.epoch {
			if d.offset <= prev.offset {
				v.OutOfOrder++
				v.example("client %d %s: offset %d after %d", client, ch, d.offset, prev.offset)
			}
			from = prev.offset
		} else if prev != nil || d.epoch != start.epoch {
			from = 0
		}
		for off := from + 1; off < d.offset; off++ {
			if !noticed(cl.notices, ch, d.epoch, off) {
				v.Holes++
			}
		}
		prev = &cl.deliveries[ch][k]
	}
	for _, p := range acked {
		if p.epoch == start.epoch && p.offset <= start.offset {
			continue // published before this client subscribed
		}
		v.Expected++
		d, ok := got[p.epoch+"/"+fmt.Sprint(p.offset)]
		switch {
		case ok && d.id == p.id:
			v.Delivered++
		case ok:
			v.WrongData++
			v.example("client %d %s: offset %d carried %q, acknowledged for %s", client, ch, p.offset, d.id, p.id)
		case noticed(cl.notices, ch, p.epoch, p.offset):
			v.Noticed++
		default:
			v.SilentLosses++
			v.example("client %d %s: %s publication %s (epoch %s offset %d) never arrived, no notice", client, ch, p.source, p.id, p.epoch, p.offset)
		}
	}
}

func noticed(ns []notice, ch, epoch string, off uint64) bool {
	for _, n := range ns {
		if n.covers(ch, epoch, off) {
			return true
		}
	}
	return false
}

// connectionStats sums the clients' connection histories.
type connectionStats struct {
	Connected       int // clients connected now
	Connects        int
	LongestDown     time.Duration
	GaveUp          int
	HandshakeErrors map[string]int
	CloseCodes      map[int]int
}

func connectionSummary(logs []*clientLog) connectionStats {
	s := connectionStats{HandshakeErrors: map[string]int{}, CloseCodes: map[int]int{}}
	for _, l := range logs {
		l.mu.Lock()
		s.Connects += l.connects
		if l.connects > 0 && l.down.IsZero() {
			s.Connected++
		}
		s.LongestDown = max(s.LongestDown, l.longestDown)
		if l.gaveUpAfter > 0 {
			s.GaveUp++
		}
		for k, n := range l.handshakeErrors {
			s.HandshakeErrors[k] += n
		}
		for k, n := range l.closeCodes {
			s.CloseCodes[k] += n
		}
		l.mu.Unlock()
	}
	return s
}

// sortedKeys formats a count map deterministically.
func sortedCounts[K comparable](m map[K]int) string {
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%v: %d", k, n))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}
