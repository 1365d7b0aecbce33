package gateway

import (
	"fmt"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/auth"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/presence"
)

// Config holds every server setting. DefaultConfig returns the defaults the
// command line documents.
type Config struct {
	// Listen is the TCP address to accept WebSocket connections on.
	Listen string
	// ReusePort sets SO_REUSEPORT so several processes can share Listen.
	ReusePort bool

	// Echo enables the raw echo endpoint at EchoPath (conformance tests,
	// benchmarks).
	Echo     bool
	EchoPath string
	// Demo serves the demo chat page (embedded, see static.go) to plain GET
	// requests of / and /demo/… on the client listener.
	Demo bool
	// WSPath is the client protocol endpoint.
	WSPath string

	// AllowedOrigins lists the Origin values accepted in a handshake:
	// "https://app.example.com", "*.example.com" (any scheme, any
	// subdomain) or "*" (anything). Empty: only requests without Origin or
	// whose Origin host equals the Host header.
	AllowedOrigins []string

	// MaxMessageBytes bounds an incoming message; larger ones close the
	// connection with 1009. A compressed message is bounded inflated (on
	// the wire by DEFLATE's worst case for that size, see wsframe).
	MaxMessageBytes int

	// Compression accepts permessage-deflate offers (RFC 7692), always
	// without context takeover in either direction, so one compressed
	// frame serves every subscriber of a publication and a connection at
	// rest holds no compression state. A namespace may turn it off for its
	// channels (its "compression" option). Frames whose payload is shorter
	// than CompressionMinBytes go out uncompressed, and so do frames longer
	// than the window a client asked for (server_max_window_bits).
	Compression         bool
	CompressionMinBytes int
	// MaxPublicationBytes bounds a publication's data wherever it comes
	// from: a client's publish over it is answered with error 106 (the
	// connection stays), an API publish with 400. It must leave room for
	// the command around the data within MaxMessageBytes (publishRoom).
	MaxPublicationBytes int
	// MaxQueueBytes bounds a connection's backlog once its socket refuses
	// bytes: the bytes queued for it that the last write left unwritten,
	// and what was queued since. A frame that would take such a backlog over
	// it closes the connection with 4008 (slow consumer). While the socket
	// takes all it is offered, frames are always accepted, whatever their
	// size or number before the next write (a burst the hub queues at once),
	// so a reading client is never "slow".
	MaxQueueBytes int
	// BatchSends writes a publication's frames to its subscribers' sockets
	// in batches, one io_uring_enter(2) per 64 sockets instead of one
	// write(2) each. Where io_uring is unavailable (old kernel, disabled
	// by sysctl or seccomp) the server logs it once and writes one socket
	// at a time.
	BatchSends bool
	// MessageTimeout bounds how long a message (or a frame header) may
	// take to arrive once its first byte has: a client that trickles a
	// frame is closed with 4009.
	MessageTimeout time.Duration
	// MaxPartialBytes bounds the bytes held in partial input across all
	// connections: incomplete upgrade requests, frames and fragmented
	// messages. The connection whose input would take the total over it
	// is closed with 4013 (or answered 503 during the handshake).
	MaxPartialBytes int
	// MaxHandshakes bounds handshakes in progress; connections beyond it are
	// answered 503 and closed.
	MaxHandshakes int
	// MaxHandshakeBytes bounds the HTTP upgrade request.
	MaxHandshakeBytes int
	// HandshakeTimeout closes connections that have not completed the
	// upgrade in time.
	HandshakeTimeout time.Duration

	// PingInterval: a connection from which nothing was received for this
	// long is sent a ping. PongTimeout: it is closed when nothing at all
	// arrives within this long after the ping.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// Heartbeat says who sends those pings: HeartbeatPing (WebSocket pings,
	// the default) or HeartbeatTCP (the kernel's TCP keepalive probes on
	// the same schedule; keepalive.go). Where no proxy stands between the
	// gateway and its clients, HeartbeatTCP checks liveness at no cost to
	// the gateway's processes.
	Heartbeat Heartbeat

	// DrainWindow spreads the 1001 closes of a graceful shutdown over this
	// long, so clients do not all reconnect at the same instant.
	DrainWindow time.Duration

	// Event loop sizing (0: netpoll defaults).
	Loops          int
	WorkersPerLoop int

	// Hook, when set, sees every handshake before the 101 and may reject it.
	Hook HandshakeHook

	// MaxChannelBytes bounds a channel name; MaxChannelsPerConn bounds one
	// connection's subscriptions.
	MaxChannelBytes    int
	MaxChannelsPerConn int

	// HistorySize and HistoryTTL bound each channel's retained history (0
	// size: none). Recovery lets a subscribe with a resume position replay
	// what the client missed.
	HistorySize int
	HistoryTTL  time.Duration
	Recovery    bool

	// IdempotencyTTL is how long a publish's idempotency key is remembered
	// by the embedded broker (the Redis broker has its own setting).
	IdempotencyTTL time.Duration

	// Namespaces gives channels their options and rules (nil: every
	// channel uses the history flags above, anyone may subscribe and
	// publish, no presence).
	Namespaces *Namespaces

	// Auth verifies tokens at the handshake, in refresh commands and in
	// subscription tokens (nil: every connection is anonymous). When set,
	// anonymous connections need AllowAnonymous in its config.
	Auth *auth.Authenticator

	// Presence tracks who is subscribed where (nil: in-process store).
	Presence presence.Store

	// Limits: connections in total, per client IP and per user (0: no
	// limit); handshakes per second (0: no limit), answered 503 with
	// Retry-After beyond it; commands per second per connection with a
	// burst (0: no limit): over → error 107, still over after CommandBurst
	// more → close 4029.
	MaxConns        int
	MaxConnsPerIP   int
	MaxConnsPerUser int
	AcceptRate      float64
	CommandRate     float64
	CommandBurst    int

	// TrustedProxies lists the proxies (CIDRs or single addresses) whose
	// X-Forwarded-For names the client. A connection from one of them is
	// counted against MaxConnsPerIP, at its upgrade, as the address that
	// header names (the rightmost one not itself trusted), and the logs
	// print that address. Empty: every connection is its TCP peer and
	// X-Forwarded-For is ignored.
	TrustedProxies []string

	// RefreshGrace is how long a connection whose token expired may take to
	// send a refresh before it is closed with 4004 (at least 1 s: the
	// refresh push must go out and its answer come back within it).
	RefreshGrace time.Duration

	// LogSummaryInterval is how often counts of refused handshakes and
	// forced closes are logged at info level (default 10 s); each single
	// one is logged at debug level.
	LogSummaryInterval time.Duration

	// MetricStats are more counters to export on /metrics: pointers to
	// structs of tagged atomic.Int64 fields, like Metrics (the wsgate
	// binary's memory trimmer, say).
	MetricStats []any

	// Broker carries publications between instances (nil: the embedded
	// in-process broker). NodeID names this instance in publications.
	Broker broker.Broker
	NodeID string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Listen:              "127.0.0.1:8080",
		EchoPath:            "/echo",
		WSPath:              "/ws",
		MaxMessageBytes:     64 << 10,
		Compression:         true,
		BatchSends:          true,
		CompressionMinBytes: 256,
		MaxPublicationBytes: 63 << 10,
		MaxQueueBytes:       1 << 20,
		MessageTimeout:      10 * time.Second,
		MaxPartialBytes:     256 << 20,
		MaxHandshakes:       32768,
		MaxHandshakeBytes:   8 << 10,
		HandshakeTimeout:    5 * time.Second,
		PingInterval:        25 * time.Second,
		PongTimeout:         10 * time.Second,
		Heartbeat:           HeartbeatPing,
		DrainWindow:         10 * time.Second,
		MaxChannelBytes:     128,
		MaxChannelsPerConn:  128,
		HistorySize:         broker.DefaultHistorySize,
		HistoryTTL:          broker.DefaultHistoryTTL,
		Recovery:            true,
		CommandBurst:        50,
		RefreshGrace:        10 * time.Second,
	}
}

// Validate reports the first setting, or combination of settings, that
// cannot work, naming the command-line flag it comes from. New calls it;
// `wsgate serve` calls it before anything starts.
func (c Config) Validate() error {
	if err := c.validateEach(); err != nil {
		return err
	}
	return c.validatePairs()
}

// publishRoom is what a publish command holds besides its data, at most:
// the command's keys and id (publishCommandBytes), the channel name and an
// idempotency key.
func (c Config) publishRoom() int {
	channel := c.MaxChannelBytes
	if channel <= 0 {
		channel = codec.DefaultMaxChannelBytes
	}
	return publishCommandBytes + channel + codec.MaxIdempotencyKeyBytes
}

// publishCommandBytes bounds a publish command's own bytes in either
// encoding: {"id":4294967295,"cmd":"publish","channel":"","data":,
// "idempotency_key":""} is 74 in JSON; MessagePack's is shorter.
const publishCommandBytes = 96

func (c Config) validateEach() error {
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		return err
	}
	switch {
	case c.MaxMessageBytes <= 0 || c.MaxMessageBytes > maxMessageLimit:
		return fmt.Errorf("--max-message-bytes %d: want 1 to %d", c.MaxMessageBytes, maxMessageLimit)
	case c.MaxPublicationBytes <= 0 || c.MaxPublicationBytes+c.publishRoom() > c.MaxMessageBytes:
		return fmt.Errorf("--max-publication-bytes %d must be positive and at most --max-message-bytes %d less %d "+
			"for the publish command around the data (its channel name up to --max-channel-bytes, an idempotency key), "+
			"else a publish of allowed size is closed with 1009 instead of answered",
			c.MaxPublicationBytes, c.MaxMessageBytes, c.publishRoom())
	case c.MaxQueueBytes <= 0:
		return fmt.Errorf("--max-queue-bytes must be positive, got %d", c.MaxQueueBytes)
	case c.MaxPartialBytes <= 0:
		return fmt.Errorf("--max-partial-bytes must be positive, got %d", c.MaxPartialBytes)
	case c.MaxHandshakes <= 0:
		return fmt.Errorf("--max-handshakes must be positive, got %d", c.MaxHandshakes)
	case c.MaxHandshakeBytes < 256 || c.MaxHandshakeBytes > maxHandshakeLimit:
		return fmt.Errorf("--max-handshake-bytes %d: want 256 to %d (an upgrade request must fit half a read buffer)",
			c.MaxHandshakeBytes, maxHandshakeLimit)
	case c.HandshakeTimeout <= 0 || c.PingInterval <= 0 || c.PongTimeout <= 0 || c.MessageTimeout <= 0:
		return fmt.Errorf("--handshake-timeout, --ping-interval, --pong-timeout and --message-timeout must be positive")
	case c.Heartbeat != "" && c.Heartbeat != HeartbeatPing && c.Heartbeat != HeartbeatTCP:
		return fmt.Errorf("--heartbeat %q: want %q or %q", c.Heartbeat, HeartbeatPing, HeartbeatTCP)
	case c.Heartbeat == HeartbeatTCP && (c.PingInterval < time.Second || c.PongTimeout < time.Second ||
		c.PingInterval > maxKeepaliveIdle || c.PongTimeout > maxKeepaliveIdle):
		return fmt.Errorf("--heartbeat tcp counts in whole seconds: --ping-interval and --pong-timeout must be 1s to %v",
			maxKeepaliveIdle)
	case c.MaxChannelBytes <= 0 || c.MaxChannelsPerConn <= 0:
		return fmt.Errorf("--max-channel-bytes and --max-channels-per-conn must be positive")
	case c.HistorySize < 0 || c.HistoryTTL < 0:
		return fmt.Errorf("--history-size and --history-ttl must not be negative")
	case c.IdempotencyTTL < 0 || c.IdempotencyTTL > 0 && c.IdempotencyTTL < time.Millisecond:
		// Redis counts the key's life in whole milliseconds: below one,
		// its SET would fail after the publication was made.
		return fmt.Errorf("--idempotency-ttl %v: want at least 1ms (0: the default)", c.IdempotencyTTL)
	case c.DrainWindow < 0:
		return fmt.Errorf("--drain-window must not be negative")
	case c.MaxConns < 0 || c.MaxConnsPerIP < 0 || c.MaxConnsPerUser < 0:
		return fmt.Errorf("--max-conns, --max-conns-per-ip and --max-conns-per-user must not be negative (0: no limit)")
	case c.AcceptRate < 0 || c.CommandRate < 0:
		return fmt.Errorf("--accept-rate and --command-rate must not be negative (0: no limit)")
	case c.CompressionMinBytes < 0:
		return fmt.Errorf("--compression-min-bytes must not be negative, got %d", c.CompressionMinBytes)
	case c.RefreshGrace < minRefreshGrace:
		return fmt.Errorf("--refresh-grace %v: want at least %v (an expired connection is sent a refresh push and "+
			"given this long to answer; less, and it is closed with 4004 without the push or before a reply can come)",
			c.RefreshGrace, minRefreshGrace)
	}
	return nil
}

// validatePairs refuses combinations in which one limit makes another
// meaningless or unreachable.
func (c Config) validatePairs() error {
	switch {
	case c.MaxPartialBytes < c.MaxMessageBytes:
		return fmt.Errorf("--max-partial-bytes %d is less than --max-message-bytes %d: a message of the largest size could never be received",
			c.MaxPartialBytes, c.MaxMessageBytes)
	case c.MaxQueueBytes < minQueueBytes:
		return fmt.Errorf("--max-queue-bytes %d is less than %d: a reading client could be closed as a slow consumer for a few replies",
			c.MaxQueueBytes, minQueueBytes)
	case c.CommandRate > 0 && c.CommandBurst < 1:
		return fmt.Errorf("--command-burst %d with --command-rate %g: the burst must be at least 1, or every command is refused",
			c.CommandBurst, c.CommandRate)
	case c.MaxConns > 0 && c.MaxConnsPerIP > c.MaxConns:
		return fmt.Errorf("--max-conns-per-ip %d is more than --max-conns %d: it could never be reached", c.MaxConnsPerIP, c.MaxConns)
	case c.MaxConns > 0 && c.MaxConnsPerUser > c.MaxConns:
		return fmt.Errorf("--max-conns-per-user %d is more than --max-conns %d: it could never be reached", c.MaxConnsPerUser, c.MaxConns)
	}
	return nil
}

// Bounds of single settings and of combinations.
const (
	// maxMessageLimit keeps a message's size (and so a connection's
	// partial input) within an int32.
	maxMessageLimit = 1 << 30
	// maxHandshakeLimit: a partial upgrade request is carried over into
	// the worker's read buffer, which must keep room for the next read.
	maxHandshakeLimit = readBufferBytes / 2
	// minQueueBytes: below this a reading client could be closed as a slow
	// consumer for a handful of replies and pongs.
	minQueueBytes = 4 << 10
	// minRefreshGrace: the expiry check runs on the connection's timer,
	// one tick (100 ms) late at worst; a grace shorter than that can pass
	// before the refresh push is sent, and the client needs a round trip to
	// its backend for a new token on top of one to the gateway.
	minRefreshGrace = time.Second
)

// DefaultNamespace is the namespace the flags describe.
func (c Config) DefaultNamespace() Namespace {
	return Namespace{
		HistorySize: c.HistorySize, HistoryTTL: Duration(c.HistoryTTL), Recovery: c.Recovery,
		Subscribe: RuleAnyone, Publish: RuleAnyone, Compression: c.Compression,
	}
}

// namespaces returns the configured namespaces or the flags' default.
func (c *Config) namespaces() *Namespaces {
	if c.Namespaces == nil {
		c.Namespaces, _ = NewNamespaces(c.DefaultNamespace(), nil)
	}
	return c.Namespaces
}

// compressionPolicy says which channels' publications may go out
// compressed (nil: none, compression is off).
func (c *Config) compressionPolicy() func(string) bool {
	if !c.Compression {
		return nil
	}
	ns := c.namespaces()
	return func(channel string) bool { return ns.For(channel).Compression }
}

// HistoryPolicy is the history each channel keeps under this configuration.
func (c Config) HistoryPolicy() func(string) (int, time.Duration) {
	return c.namespaces().HistoryPolicy()
}
