// Package presence tracks who is subscribed to a channel across every
// gateway instance: its members (connections, with their user and a small
// opaque info) and O(1) counts of clients and distinct users.
//
// Two stores share one set of semantics (and one behaviour test): Memory
// for a single instance, Redis for several instances sharing a Redis or a
// Redis Cluster. Writes never block the caller: the Redis store queues them
// and applies them in the background; reads answer through a callback, like
// the broker API.
package presence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// MaxInfo bounds Member.Info: presence is for "who is here", not payloads,
// and every byte is stored per member per channel.
const MaxInfo = 256

// Member is one connection subscribed to a channel.
type Member struct {
	Client string // connection id, unique per connection (e.g. node id + counter)
	User   string // authenticated user id, "" for anonymous
	Info   []byte // opaque, at most MaxInfo bytes
}

// Stats counts a channel's members. Users counts distinct non-empty user
// ids: anonymous clients count as clients only.
type Stats struct {
	Clients, Users int
}

// Store is a channel → members table.
//
// Join and Leave never block: they are applied in the background (a full
// queue drops the call and counts it). Members and Stats call done exactly
// once, possibly before they return (Memory) or later on another goroutine
// (Redis); done must not block, nor call Close. Calls made on one Store
// are applied in order, so an instance reads its own writes. A read that
// cannot be answered now fails with ErrClosed, ErrOverloaded or
// ErrUnavailable (a retry later, or on another instance, may
// succeed); any other error is a
// failure that a retry will not cure.
type Store interface {
	// Join adds m to channel, or replaces the member with the same Client.
	Join(channel string, m Member)
	// Leave removes client from channel. It is called on the instance
	// that joined the client: that instance keeps refreshing its members
	// until they leave there.
	Leave(channel string, client string)
	// Members lists channel's live members, in no particular order.
	Members(channel string, done func([]Member, error))
	// Stats counts channel's live members; its cost does not depend on
	// how many there are.
	Stats(channel string, done func(Stats, error))
	// Close stops the store. Members it joined are not removed: other
	// instances see them until they expire (Redis) or never again (Memory).
	Close() error
}

// Counters are a store's health counters. Each field's tags name its metric
// and HELP text (gateway/metrics.go exports every tagged field).
type Counters struct {
	Dropped  atomic.Int64 `metric:"wsgate_presence_dropped_total" help:"Presence joins/leaves refused by a full queue (Redis); repaired by the refresh or by expiry."`
	Rejected atomic.Int64 `metric:"wsgate_presence_rejected_total" help:"Presence joins rejected: empty client id or member info over its limit."`
	Errors   atomic.Int64 `metric:"wsgate_presence_errors_total" help:"Presence calls to Redis that failed."`
}

var (
	// ErrClosed answers reads made after Close.
	ErrClosed = errors.New("presence: store closed")
	// ErrOverloaded answers reads refused by a full queue.
	ErrOverloaded = errors.New("presence: queue full")
	// ErrUnavailable answers reads that failed on the way to Redis
	// (cannot connect, connection lost, timed out), not in it: a later
	// retry may succeed.
	ErrUnavailable = errors.New("presence: redis unavailable")
)

// valid reports whether m may join; the caller counts refusals.
func valid(m Member) bool { return m.Client != "" && len(m.Info) <= MaxInfo }

// encode packs a member's user and info into one string (the Redis hash
// value): "<len(user)>:<user><info>". The length prefix makes any byte legal
// in both, and Lua finds the user with one string.find.
func encode(user string, info []byte) string {
	var b strings.Builder
	b.Grow(len(user) + len(info) + 4)
	b.WriteString(strconv.Itoa(len(user)))
	b.WriteByte(':')
	b.WriteString(user)
	b.Write(info)
	return b.String()
}

// decode reverses encode.
func decode(client, v string) (Member, error) {
	head, rest, ok := strings.Cut(v, ":")
	n, err := strconv.Atoi(head)
	if !ok || err != nil || n < 0 || n > len(rest) {
		return Member{}, fmt.Errorf("presence: bad member value for %q", client)
	}
	m := Member{Client: client, User: rest[:n]}
	if len(rest) > n {
		m.Info = []byte(rest[n:])
	}
	return m, nil
}

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
)
