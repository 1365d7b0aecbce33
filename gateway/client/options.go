package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wsgate/wsgate/codec"
)

// Options configure a Client. The zero value is usable: MessagePack, no
// token, the defaults below.
type Options struct {
	// Encoding is the wire encoding: codec.Msgpack (the default) or
	// codec.JSON. Publish data must be JSON text on a JSON connection.
	Encoding codec.Encoding

	// Token is sent as "Authorization: Bearer <token>" in every handshake.
	// TokenSource, when set, is used instead: it is called before every
	// connection attempt (so a reconnect, after a 4004 close too, gets a
	// fresh token) and when the server asks for a new one (a "refresh"
	// push, answered with the refresh command on the same connection). An
	// error from it stops the client: Err reports it, wrapped in
	// ErrTokenSource.
	Token       string
	TokenSource func(ctx context.Context) (string, error)

	// Header is added to every handshake request (e.g. Origin, cookies).
	Header http.Header
	// HTTPClient performs the handshakes (default: a private transport
	// without keep-alives, closed with the Client).
	HTTPClient *http.Client

	// Backoff paces reconnects.
	Backoff Backoff

	// PingInterval is how often the client pings a connected server, and
	// PongTimeout how long it waits for the pong before it declares the
	// connection dead and reconnects (defaults 20 s and 10 s; a negative
	// PingInterval turns pings off).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// DialTimeout bounds one connection attempt (default 10 s).
	DialTimeout time.Duration
	// WriteTimeout bounds writing one command; a write that takes longer
	// drops the connection (default 10 s).
	WriteTimeout time.Duration

	// MaxMessageBytes is the largest server message read (default 4 MiB;
	// larger: the connection is closed with 1009 and the client reconnects).
	MaxMessageBytes int64

	// QueueSize bounds the events waiting for handlers (default 4096, at
	// least 2). A
	// connection whose events find the queue full is dropped and resumed
	// once the handlers have caught up: a slow handler costs a reconnect,
	// never memory without bound and never a lost publication.
	QueueSize int

	// PublishAttempts bounds how often Publish sends one publication
	// (default 5). See Client.Publish for what is retried.
	PublishAttempts int

	// Logger receives connection-level events (default: discarded).
	Logger *slog.Logger

	// OnState, when set, is called on every state change, on the same
	// goroutine as the subscription handlers and in order with their
	// events.
	OnState func(State)
}

// Backoff paces reconnects: exponential with full jitter. Attempt n (n = 0
// after a healthy connection) waits a uniformly random time in
// [0, min(Max, Min·2ⁿ)], so that clients that lost the same server come
// back spread over the window instead of at once. After 4008 (slow
// consumer) and 4029 (rate limited) the window is 16 times wider and the
// wait at least half of it.
type Backoff struct {
	Min time.Duration // first window (default 200 ms)
	Max time.Duration // largest window (default 20 s)
	// HealthyAfter: a connection that lasted this long resets the attempt
	// count (default 10 s).
	HealthyAfter time.Duration
}

// Default option values.
const (
	DefaultMinBackoff      = 200 * time.Millisecond
	DefaultMaxBackoff      = 20 * time.Second
	DefaultHealthyAfter    = 10 * time.Second
	DefaultPingInterval    = 20 * time.Second
	DefaultPongTimeout     = 10 * time.Second
	DefaultDialTimeout     = 10 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultMaxMessageBytes = 4 << 20
	DefaultQueueSize       = 4096
	minQueueSize           = 2
	DefaultPublishAttempts = 5
)

// withDefaults fills unset options and rejects contradictory ones.
func (o Options) withDefaults() (Options, error) {
	if o.Encoding != codec.Msgpack && o.Encoding != codec.JSON {
		return o, errors.New("client: unknown encoding")
	}
	if o.Token != "" && o.TokenSource != nil {
		return o, errors.New("client: set Token or TokenSource, not both")
	}
	b := &o.Backoff
	b.Min = orDefault(b.Min, DefaultMinBackoff)
	b.Max = orDefault(b.Max, DefaultMaxBackoff)
	b.HealthyAfter = orDefault(b.HealthyAfter, DefaultHealthyAfter)
	if b.Max < b.Min {
		return o, errors.New("client: Backoff.Max is below Backoff.Min")
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	o.PongTimeout = orDefault(o.PongTimeout, DefaultPongTimeout)
	o.DialTimeout = orDefault(o.DialTimeout, DefaultDialTimeout)
	o.WriteTimeout = orDefault(o.WriteTimeout, DefaultWriteTimeout)
	o.MaxMessageBytes = orDefault(o.MaxMessageBytes, DefaultMaxMessageBytes)
	o.QueueSize = orDefault(o.QueueSize, DefaultQueueSize)
	if o.QueueSize < minQueueSize {
		return o, fmt.Errorf("client: QueueSize %d is below %d (a publication may come with an epoch notice)", o.QueueSize, minQueueSize)
	}
	o.PublishAttempts = orDefault(o.PublishAttempts, DefaultPublishAttempts)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func orDefault[T time.Duration | int | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
