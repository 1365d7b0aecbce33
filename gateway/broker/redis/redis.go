// Package redis is the broker for several wsgate instances: Redis Pub/Sub
// on a standalone Redis, sharded Pub/Sub (SSUBSCRIBE/SPUBLISH) on Redis
// Cluster, through github.com/redis/rueidis.
//
// Publishing runs the wsgate_publish function, which assigns the channel's
// next offset and publishes the envelope in one atomic step. Every instance
// with local subscribers receives the publication on its pub/sub
// connections (the publishing instance too, exactly once) and hands it to
// the hub without blocking.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/rediskeys"
)

// Config configures the Redis broker.
type Config struct {
	// URL: redis://[user:pass@]host:port/db, rediss://… (TLS) or
	// redis+cluster://host1:port,host2:port (cluster mode is also detected
	// from a plain redis:// URL).
	URL string
	// Node names this instance in publications.
	Node string
	// Prefix namespaces every key and channel (default "wsgate").
	Prefix string
	// Partitions is the number of hash-tagged partitions channels map to
	// (default 64). All instances and backends must agree on it.
	Partitions int
	// PubSubShards is the number of dedicated pub/sub connections on a
	// standalone Redis (default 4). On a cluster there is one per master.
	PubSubShards int
	// ProbeInterval: an idle pub/sub connection is probed this often, and
	// declared deaf when its probe is not back within ProbeTimeout (unless
	// the reader was holding a publication for a full hub meanwhile).
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// MetaTTL is how long a channel's offset and epoch outlive its last
	// publication (default 24 h).
	MetaTTL time.Duration
	// History says how much history each channel keeps (default: 100
	// publications for 5 minutes).
	History broker.HistoryPolicy
	// Publishers is the number of publishing pipelines (default 8);
	// publications of one channel always use the same one, in order.
	Publishers int
	// QueueDepth bounds publications waiting per pipeline (default 4096).
	QueueDepth int
	// Timeout bounds every Redis round trip (default 5 s).
	Timeout time.Duration
	// IdempotencyTTL is how long a publish's idempotency key is claimed
	// (default broker.DefaultIdempotencyTTL).
	IdempotencyTTL time.Duration
	// MaxBackpressure bounds how long a pub/sub reader waits for a full
	// hub to take a publication before dropping it (default 2 s).
	MaxBackpressure time.Duration
	Log             *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Prefix, c.Partitions = rediskeys.Defaults(c.Prefix, c.Partitions)
	if c.PubSubShards <= 0 {
		c.PubSubShards = 4
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 5 * time.Second
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 3 * time.Second
	}
	if c.MetaTTL <= 0 {
		c.MetaTTL = 24 * time.Hour
	}
	if c.History == nil {
		c.History = broker.DefaultHistory
	}
	if c.Publishers <= 0 {
		c.Publishers = 8
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = 4096
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.IdempotencyTTL <= 0 {
		c.IdempotencyTTL = broker.DefaultIdempotencyTTL
	}
	// Redis keeps the key in whole milliseconds, and its SET PX 0 would fail
	// after the publication was made.
	c.IdempotencyTTL = max(c.IdempotencyTTL, time.Millisecond)
	if c.MaxBackpressure <= 0 {
		c.MaxBackpressure = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Stats are the broker's counters.
type Stats struct {
	Received     atomic.Int64 `metric:"wsgate_redis_received_total" help:"Publications received from Redis pub/sub."`
	Dropped      atomic.Int64 `metric:"wsgate_redis_dropped_total" help:"Publications from Redis the hub refused even after waiting (a gap, filled from history)."`
	Backpressure atomic.Int64 `metric:"wsgate_redis_backpressure_total" help:"Times the pub/sub reader waited for the hub to take a publication."`
	Undecodable  atomic.Int64 `metric:"wsgate_redis_undecodable_total" help:"Messages on wsgate's Redis channels that were not valid envelopes."`
	Reconnects   atomic.Int64 `metric:"wsgate_redis_reconnects_total" help:"Redis pub/sub connections re-established."`
	DeafDetected atomic.Int64 `metric:"wsgate_redis_deaf_total" help:"Liveness probes on a pub/sub connection that did not come back (the connection is replaced)."`
	PublishErrs  atomic.Int64 `metric:"wsgate_redis_publish_errors_total" help:"Publishes that failed in Redis."`
	// EventsDropped counts join/leave events not sent: pipeline full or
	// closed, encoding or Redis error (they are fire-and-forget).
	EventsDropped atomic.Int64 `metric:"wsgate_redis_events_dropped_total" help:"Join/leave events not sent: pipeline full or closed, encoding or Redis error."`
	// PositionsShared counts position reads answered by another read of
	// the same channel in the same pipeline (mergePositions).
	PositionsShared atomic.Int64 `metric:"wsgate_redis_positions_shared_total" help:"Subscribe position reads answered by an identical read queued just before them in the same pipeline batch (no Redis call of their own)."`
}

// Broker is the Redis broker.
type Broker struct {
	cfg     Config
	names   naming
	client  rueidis.Client
	cluster bool
	sink    broker.Sink
	stats   Stats

	pubs   []*publisher
	subs   subscriptions
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	healthy   atomic.Int32 // pub/sub connections subscribed and live
	stateMu   sync.Mutex
	lastState string // logged once per change
}

// New connects to Redis. It fails at once on a bad URL; an unreachable
// Redis is retried, with backoff, until it answers: rueidis must reach it
// once to learn whether it is a cluster. New therefore does not return
// while Redis stays unreachable; NewContext can give up.
func New(cfg Config) (*Broker, error) {
	return NewContext(context.Background(), cfg)
}

// NewContext is New, giving up (with ctx's error) when ctx is done before
// Redis has answered once. ctx bounds only the connecting: the broker runs
// until Close.
func NewContext(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	opt, err := clientOption(cfg.URL)
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, names: newNaming(cfg.Prefix, cfg.Partitions)}
	b.client, err = connect(ctx, opt, cfg.Log)
	if err != nil {
		return nil, err
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.cluster = b.client.Mode() == rueidis.ClientModeCluster
	return b, nil
}

// connect makes the rueidis client, retrying with backoff while Redis is
// unreachable (rueidis needs one successful connection to learn the mode).
func connect(ctx context.Context, opt rueidis.ClientOption, log *slog.Logger) (rueidis.Client, error) {
	backoff := 100 * time.Millisecond
	for {
		c, err := rueidis.NewClient(opt)
		if err == nil {
			return c, nil
		}
		log.Warn("redis unavailable, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("redis: connect: %w (last try: %w)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// CheckURL reports whether url is a Redis URL New accepts (the error is
// the one New would return), without connecting.
func CheckURL(url string) error {
	_, err := clientOption(url)
	return err
}

// clientOption turns a wsgate Redis URL into rueidis options.
func clientOption(url string) (rueidis.ClientOption, error) {
	var hosts []string
	if rest, ok := strings.CutPrefix(url, "redis+cluster://"); ok {
		auth, hostlist := "", rest
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			auth, hostlist = rest[:i+1], rest[i+1:]
		}
		hostlist, _, _ = strings.Cut(hostlist, "/")
		hosts = strings.Split(hostlist, ",")
		url = "redis://" + auth + hosts[0]
	}
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return opt, fmt.Errorf("redis url: %w", err)
	}
	if len(hosts) > 0 {
		opt.InitAddress = hosts
		opt.SelectDB = 0
	}
	opt.DisableCache = true
	// rueidis PINGs every idle connection once per Dialer.KeepAlive (1 s by
	// default): ~5 round trips a second per gateway doing nothing, the
	// largest part of an idle gateway's CPU (53 of them on a million-
	// connection host spent ~10 % of a core on it). Every 5 s, like the
	// pub/sub probes (Config.ProbeInterval), is enough: a lost connection
	// is seen at once (EOF, RST), a silent one within ConnWriteTimeout,
	// which is kept at rueidis's default for 1 s pings.
	opt.Dialer.KeepAlive = redisIdlePing
	opt.ConnWriteTimeout = redisConnWriteTimeout
	return opt, nil
}

// rueidis's idle PING interval and its bound on a pipeline's replies.
const (
	redisIdlePing         = 5 * time.Second
	redisConnWriteTimeout = 10 * time.Second
)

// Start implements broker.Broker: it loads the functions library and starts
// the publishers and pub/sub connections.
func (b *Broker) Start(sink broker.Sink) error {
	b.sink = sink
	if err := b.loadLibrary(); err != nil {
		b.cfg.Log.Debug("redis functions not loaded yet", "err", err)
	}
	for i := range b.cfg.Publishers {
		p := newPublisher(b, i)
		b.pubs = append(b.pubs, p)
		b.wg.Add(1)
		go p.run()
	}
	b.subs.init(b)
	return nil
}

// loadLibrary loads the functions on every master. Every pub/sub
// connection does it when it (re)connects, before it subscribes, and
// publish retries it when Redis says a function is missing.
func (b *Broker) loadLibrary() error {
	var errs []error
	for addr, node := range b.client.Nodes() {
		errs = append(errs, b.loadLibraryOn(addr, node))
	}
	return errors.Join(errs...)
}

// loadLibraryOn loads the functions on one node (a replica refuses: its
// master's library reaches it by replication).
func (b *Broker) loadLibraryOn(addr string, node rueidis.Client) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.Timeout)
	defer cancel()
	err := node.Do(ctx, node.B().FunctionLoad().Replace().FunctionCode(library).Build()).Error()
	if err != nil && !strings.Contains(err.Error(), "READONLY") {
		return fmt.Errorf("load functions on %s: %w", addr, err)
	}
	return nil
}

// Ready reports whether every pub/sub connection is subscribed and live.
func (b *Broker) Ready() bool { return int(b.healthy.Load()) == len(b.subs.conns) }

// Client is the broker's Redis client, for other stores (presence) to
// share; the broker closes it.
func (b *Broker) Client() rueidis.Client { return b.client }

// Partitions is the number of channel partitions (key hash tags).
func (b *Broker) Partitions() int { return b.cfg.Partitions }

// Stats returns the broker's counters.
func (b *Broker) Stats() *Stats { return &b.stats }

// MetricStats is Stats for the gateway's metrics writer (gateway/metrics.go).
func (b *Broker) MetricStats() any { return &b.stats }

// setState logs connection state changes once, not once per message.
func (b *Broker) setState(state string, err error) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	if state == b.lastState {
		return
	}
	b.lastState = state
	if err != nil {
		b.cfg.Log.Warn("redis broker "+state, "err", err)
	} else {
		b.cfg.Log.Info("redis broker " + state)
	}
}

// Subscribe implements broker.Broker.
func (b *Broker) Subscribe(channel string) { b.subs.set(channel, true) }

// Unsubscribe implements broker.Broker.
func (b *Broker) Unsubscribe(channel string) { b.subs.set(channel, false) }

// Publish implements broker.Broker.
func (b *Broker) Publish(channel string, data []byte, opts broker.PublishOptions, done func(broker.PublishResult, error)) {
	b.pubs[b.names.partition(channel)%uint32(len(b.pubs))].enqueue(job{channel: channel, data: data, key: opts.IdempotencyKey, done: done})
}

// PublishEvent implements broker.Broker: the event's envelope is PUBLISHed
// (SPUBLISH on a cluster) to the channel's Pub/Sub channel through the
// channel's publishing pipeline — queued without blocking, sent in the next
// batch, after the channel's publications accepted before it. A full or
// closed pipeline drops it (counted in EventsDropped).
func (b *Broker) PublishEvent(channel string, kind codec.Kind, client, user string) {
	env, err := codec.EncodePublication(codec.Publication{
		Channel: []byte(channel), Kind: kind, Client: []byte(client), User: []byte(user),
		Node: []byte(b.cfg.Node), Time: time.Now().UnixMilli(),
	})
	if err != nil || !b.pubs[b.names.partition(channel)%uint32(len(b.pubs))].enqueue(job{channel: channel, data: env, event: true}) {
		b.stats.EventsDropped.Add(1)
	}
}

// Position implements broker.Broker. When the channel is wanted by this
// instance, it answers only once the Redis subscription is confirmed, so a
// client that got its subscribe reply misses nothing published after it.
func (b *Broker) Position(channel string, done func(broker.Position, error)) {
	answer := func(r broker.PublishResult, err error) { done(r.Position, err) }
	b.subs.whenActive(channel, func() {
		b.pubs[b.names.partition(channel)%uint32(len(b.pubs))].enqueue(job{channel: channel, position: true, done: answer})
	}, func(err error) { done(broker.Position{}, err) })
}

// History implements broker.Broker. It goes through the channel's
// publishing pipeline, so it sees every publication accepted before it.
func (b *Broker) History(channel string, q broker.HistoryQuery, done func(broker.HistoryResult, error)) {
	b.pubs[b.names.partition(channel)%uint32(len(b.pubs))].enqueue(job{channel: channel, history: true, query: q, doneHistory: done})
}

// Close implements broker.Broker.
func (b *Broker) Close() error {
	b.cancel()
	for _, p := range b.pubs {
		p.close()
	}
	b.subs.close()
	b.wg.Wait()
	b.client.Close()
	return nil
}

var errClosed = broker.Unavailable(errors.New("redis broker closed"))
