package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/wsgate/wsgate/gateway/rediskeys"
)

// RedisConfig configures NewRedis.
type RedisConfig struct {
	// Client is the Redis (or Redis Cluster) client; the caller owns it and
	// closes it after the store.
	Client rueidis.Client
	// Prefix and Partitions must match the broker's (defaults rediskeys.DefaultPrefix, DefaultPartitions)
	// so a channel's presence keys share its slot.
	Prefix     string
	Partitions int
	// Node names this instance in logs.
	Node string
	// TTL is how long a member outlives its instance (default 30 s when
	// zero or negative, at least MinTTL otherwise): every instance re-joins
	// its live members every TTL/3, so members of a crashed instance expire
	// within TTL.
	TTL time.Duration
	// QueueDepth bounds Join/Leave/reads waiting for Redis (default 65536).
	QueueDepth int
	// Timeout bounds every Redis round trip (default 5 s).
	Timeout time.Duration
	Log     *slog.Logger
}

func (c RedisConfig) withDefaults() RedisConfig {
	c.Prefix, c.Partitions = rediskeys.Defaults(c.Prefix, c.Partitions)
	if c.TTL <= 0 {
		c.TTL = 30 * time.Second
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = 65536
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// MinTTL is the shortest RedisConfig.TTL NewRedis accepts. Redis counts a
// member's life in whole milliseconds and the refresh that keeps members
// alive runs every TTL/3: far below this, one Redis round trip outlasts a
// refresh period, so members expire while their connections live (and
// below 3 ns the refresh period is 0, which time.NewTicker refuses).
const MinTTL = 100 * time.Millisecond

// keyTTLFactor: whole keys expire this many TTLs after the last join or
// refresh, so a channel abandoned by every instance vanishes unread.
const keyTTLFactor = 3

// Redis is the store shared by every instance through Redis.
//
// One background goroutine owns all Redis traffic: it takes queued calls in
// order, pipelines them (DoMulti) and, every TTL/3, re-joins this
// instance's live members a chunk at a time between queued calls. The set
// of live members is kept locally and updated synchronously by Join and
// Leave, which makes drops harmless: a dropped Join is restored by the next
// refresh, a dropped Leave expires within TTL.
type Redis struct {
	cfg      RedisConfig
	names    rediskeys.Layout // key layout, shared with the Redis broker
	counters Counters
	kick     chan struct{} // wakes the loop; capacity 1
	exited   chan struct{} // closed when the loop has returned

	mu     sync.Mutex
	queue  []op
	closed bool
	live   map[string]map[string]string // channel → client → encoded value: what this instance refreshes
	// dirty marks channels where a Join was dropped: the next refresh of
	// the channel writes values too, since the refresh's fast path only
	// extends expiries of members Redis already has (possibly with the
	// user and info from before the dropped Join).
	dirty map[string]bool
}

// opKind says what a queued call does.
type opKind uint8

const (
	opJoin opKind = iota
	opLeave
	opMembers
	opStats
	opRefresh // not queued: made by the refresher
)

// op is one queued call.
type op struct {
	kind    opKind
	channel string
	client  string
	value   string // opJoin: encode(user, info)
	members func([]Member, error)
	stats   func(Stats, error)
}

// NewRedis starts a Redis store. It does not wait for Redis: the functions
// library is loaded by the background goroutine, and reloaded whenever
// Redis reports it missing (restart, flush).
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("presence: RedisConfig.Client is nil")
	}
	if cfg.TTL > 0 && cfg.TTL < MinTTL {
		return nil, fmt.Errorf("presence: TTL %v is below the minimum %v", cfg.TTL, MinTTL)
	}
	cfg = cfg.withDefaults()
	r := &Redis{
		cfg:    cfg,
		names:  rediskeys.Layout{Prefix: cfg.Prefix, Partitions: uint32(cfg.Partitions)},
		kick:   make(chan struct{}, 1),
		exited: make(chan struct{}),
		live:   map[string]map[string]string{},
		dirty:  map[string]bool{},
	}
	go r.run()
	return r, nil
}

// Join implements Store.
func (r *Redis) Join(channel string, m Member) {
	if !valid(m) {
		r.counters.Rejected.Add(1)
		return
	}
	v := encode(m.User, m.Info)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	chm := r.live[channel]
	if chm == nil {
		chm = map[string]string{}
		r.live[channel] = chm
	}
	chm[m.Client] = v
	r.enqueueLocked(op{kind: opJoin, channel: channel, client: m.Client, value: v})
}

// Leave implements Store.
func (r *Redis) Leave(channel string, client string) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	if chm := r.live[channel]; chm != nil {
		delete(chm, client)
		if len(chm) == 0 {
			delete(r.live, channel)
			delete(r.dirty, channel)
		}
	}
	r.enqueueLocked(op{kind: opLeave, channel: channel, client: client})
}

// Members implements Store.
func (r *Redis) Members(channel string, done func([]Member, error)) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		done(nil, ErrClosed)
		return
	}
	if !r.enqueueLocked(op{kind: opMembers, channel: channel, members: done}) {
		done(nil, ErrOverloaded)
	}
}

// Stats implements Store.
func (r *Redis) Stats(channel string, done func(Stats, error)) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		done(Stats{}, ErrClosed)
		return
	}
	if !r.enqueueLocked(op{kind: opStats, channel: channel, stats: done}) {
		done(Stats{}, ErrOverloaded)
	}
}

// enqueueLocked queues o unless the queue is full, unlocks r.mu and wakes
// the loop. A refused Join or Leave is counted here.
func (r *Redis) enqueueLocked(o op) bool {
	if len(r.queue) >= r.cfg.QueueDepth {
		if o.kind == opJoin {
			r.dirty[o.channel] = true
		}
		r.mu.Unlock()
		if o.kind == opJoin || o.kind == opLeave {
			r.counters.Dropped.Add(1)
		}
		return false
	}
	r.queue = append(r.queue, o)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return true
}

// Counters returns the store's counters.
func (r *Redis) Counters() *Counters { return &r.counters }

// MetricStats is Counters for the gateway's metrics writer (gateway/metrics.go).
func (r *Redis) MetricStats() any { return &r.counters }

// Close implements Store. Calls queued before it are still sent (within
// Timeout); this instance's members are not removed — without refreshes
// they expire within TTL, exactly as if the instance had crashed.
func (r *Redis) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	<-r.exited
	return nil
}

// take removes up to n queued calls; closed reports whether Close was
// called.
func (r *Redis) take(n int, into []op) ([]op, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, len(r.queue))
	into = append(into, r.queue[:n]...)
	clear(r.queue[:n])
	r.queue = r.queue[n:]
	if len(r.queue) == 0 {
		r.queue = r.queue[:0:0] // let a burst's backing array go once drained
	}
	return into, r.closed
}

// loadLibrary loads the functions on every node; replicas refuse with
// READONLY, which is fine (they get it by replication).
func (r *Redis) loadLibrary(ctx context.Context) error {
	var errs []error
	for addr, node := range r.cfg.Client.Nodes() {
		c, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		err := node.Do(c, node.B().FunctionLoad().Replace().FunctionCode(library).Build()).Error()
		cancel()
		if err != nil && !strings.Contains(err.Error(), "READONLY") {
			errs = append(errs, fmt.Errorf("presence: load functions on %s: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}
