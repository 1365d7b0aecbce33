// Package broker defines how publications travel between wsgate instances:
// the Broker interface, implemented in-process by broker/memory and across
// instances by broker/redis.
package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/codec"
)

// Position is a channel's place in its stream: the offset of its latest
// publication within an epoch. The epoch changes when the stream's history
// is lost, so offsets are only comparable within one epoch.
type Position struct {
	Offset uint64
	Epoch  string
}

// Sink receives the publications of channels this instance subscribed to,
// in broker order per channel. Deliver must not block: it returns false when
// it had to drop the publication (its queue is full). Join / leave events
// come through Deliver too, with p.Kind set (see codec.Kind): they have no
// offset and must not be treated as publications.
//
// Resync tells the sink that the broker may have missed publications of
// channel without seeing a later one (its subscription was re-established
// after a lost connection or a broker restart, or it gave up on a
// publication Deliver kept refusing): the sink reads the
// channel's history from the last offset it delivered and fills what is
// missing, or announces an epoch change. The broker calls it only once the
// channel is subscribed again, so nothing published after the read is lost.
type Sink interface {
	Deliver(p *codec.Publication) bool
	Resync(channel string)
}

// Broker carries publications to every instance with subscribers.
//
// Calls never block on the network: results arrive through a callback that
// may run before the call returns (memory) or later on another goroutine
// (Redis). Subscribe and Unsubscribe declare this instance's interest in a
// channel (first local subscriber arrived / last one left) and are called in
// order per channel by the hub.
type Broker interface {
	// Start begins delivering to sink. It is called once, before any other call.
	Start(sink Sink) error
	// Publish appends data to channel's stream and delivers it to every
	// subscribed instance; done receives the publication's position. Its
	// error says what happened (see ErrOverloaded, ErrUnavailable,
	// ErrOutcomeUnknown, ErrKeyReused): only ErrOutcomeUnknown leaves open
	// whether the publication was made.
	Publish(channel string, data []byte, opts PublishOptions, done func(PublishResult, error))
	// PublishEvent delivers a presence event (kind codec.KindJoin or
	// codec.KindLeave of client, with its user id) to every instance
	// subscribed to channel, through the sink like a publication but
	// without an offset or history. It is fire-and-forget: it never blocks,
	// and an event that cannot be sent (queue full, broker down) is dropped.
	// Events of one channel reach the sink in the order they were published
	// (per instance), so a join is never overtaken by the matching leave.
	PublishEvent(channel string, kind codec.Kind, client, user string)
	Subscribe(channel string)
	Unsubscribe(channel string)
	// Position reports channel's current position.
	Position(channel string, done func(Position, error))
	// History reads channel's retained publications (see HistoryQuery),
	// with the channel's current position. Its error wraps ErrUnavailable
	// or ErrOverloaded when the broker cannot answer now (down, closed,
	// queue full) and a later retry may succeed.
	History(channel string, q HistoryQuery, done func(HistoryResult, error))
	// Close stops the broker; no Deliver happens after it returns.
	Close() error
}

// The history a channel keeps when nothing else is configured: the
// gateway's --history-size / --history-ttl defaults and both brokers'.
const (
	DefaultHistorySize = 100
	DefaultHistoryTTL  = 5 * time.Minute
)

// DefaultHistory is the HistoryPolicy of a broker given none.
func DefaultHistory(string) (int, time.Duration) { return DefaultHistorySize, DefaultHistoryTTL }

// HistoryPolicy says how much history a channel keeps: at most size
// publications, none older than ttl. size 0 keeps none. Brokers take it at
// construction; the gateway derives it from channel namespaces.
type HistoryPolicy func(channel string) (size int, ttl time.Duration)

// HistoryQuery selects publications from a channel's history.
type HistoryQuery struct {
	Since   uint64 // only offsets above Since (0: from the oldest retained)
	Limit   int    // at most this many (0: all retained)
	Reverse bool   // newest first (still only offsets above Since)
}

// HistoryResult is what History returns: the publications in the order
// asked for, and the channel's position when they were read.
type HistoryResult struct {
	Publications []HistoryEntry
	Position     Position
}

// HistoryEntry is one retained publication.
type HistoryEntry struct {
	Offset uint64
	Data   []byte
}

// PublishOptions are a publication's optional parts.
type PublishOptions struct {
	// IdempotencyKey, when not empty, makes the publish happen at most once
	// per (channel, key) for the broker's idempotency TTL, across every
	// instance sharing the broker: a repeat is answered with the first
	// publication's position and Replayed set, and publishes nothing.
	IdempotencyKey string
}

// PublishResult is where a publication landed.
type PublishResult struct {
	Position
	// Replayed: the idempotency key had already published it (Position is
	// the first publication's).
	Replayed bool
}

// DefaultIdempotencyTTL is how long an idempotency key is remembered
// (the gateway's --idempotency-ttl default): long enough for a client's
// retry loop with backoff, short enough to bound memory.
const DefaultIdempotencyTTL = 5 * time.Minute

// Publish errors. Each says whether the publication was made, so a caller
// never reports failure for something that was published.
var (
	// ErrOverloaded: refused because a delivery queue was full; nothing
	// was published and no offset was used. Retry later.
	ErrOverloaded = errors.New("broker: delivery queue full")
	// ErrUnavailable: the broker could not be reached (or is closed);
	// nothing was published. Retry later.
	ErrUnavailable = errors.New("broker unavailable")
	// ErrOutcomeUnknown: the request may have reached the broker but its
	// answer was lost (timeout, connection lost mid-call): the publication
	// may or may not have been made. Retry with the same idempotency key.
	ErrOutcomeUnknown = errors.New("broker: outcome unknown")
	// ErrKeyReused: the idempotency key already published different data
	// on this channel; nothing was published.
	ErrKeyReused = errors.New("broker: idempotency key already used with different data")
)

// Unavailable wraps cause as ErrUnavailable.
func Unavailable(cause error) error { return fmt.Errorf("%w: %w", ErrUnavailable, cause) }

// OutcomeUnknown wraps cause as ErrOutcomeUnknown.
func OutcomeUnknown(cause error) error { return fmt.Errorf("%w: %w", ErrOutcomeUnknown, cause) }
