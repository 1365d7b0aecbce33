package api

import (
	"context"
	"errors"
)

// Backend is what the gateway provides to the API. Calls run on net/http
// goroutines and may block; each gets a context that ends when the request
// does or after a timeout.
type Backend interface {
	// Publish publishes data to channel and returns its history position.
	// With an idempotency key (not empty) it publishes at most once per
	// (channel, key), on every instance, for the key's lifetime: a repeat
	// returns the first publication's position with Replayed set. Its
	// error wraps ErrUnavailable (not published), ErrOutcomeUnknown (may
	// have been published), ErrKeyReused or ErrInvalid.
	Publish(ctx context.Context, channel string, data []byte, key string) (PublishResult, error)
	// Disconnect closes the matching connections with code and reason
	// (code 0: the gateway's default) on every instance, and returns how
	// many there were on this one: the others are told through the broker
	// and do not report back. At least one of user and client is set; when
	// both are, a connection must match both. Its error wraps
	// ErrUnavailable when the other instances could not be told (this one
	// has acted; calling again is harmless).
	Disconnect(ctx context.Context, user, client string, code uint16, reason string) (int, error)
	// Unsubscribe removes channel from the matching connections (matched
	// and counted as for Disconnect, on every instance) and returns how
	// many matched here: each drops the
	// channel, with an unsubscribe push (or error 108 to a subscribe not
	// yet answered), if it holds it. Connections
	// answer on their own workers, so whether they held it is not waited
	// for.
	Unsubscribe(ctx context.Context, user, client, channel string) (int, error)
	// Presence lists the connections in the channel's presence.
	Presence(ctx context.Context, channel string) ([]Member, error)
	// PresenceStats counts the connections and distinct users in it.
	PresenceStats(ctx context.Context, channel string) (clients, users int, err error)
	// History returns up to limit (1..maxHistoryLimit) publications with
	// an offset above since, oldest first unless reverse, and the
	// channel's top offset and epoch.
	History(ctx context.Context, channel string, since uint64, limit int, reverse bool) ([]Publication, uint64, string, error)
	// Channels lists this instance's channels that have subscribers.
	Channels(ctx context.Context) ([]string, error)
	// Info describes the instance; it is returned as a JSON object.
	Info(ctx context.Context) (map[string]any, error)
	// ValidChannel reports whether name is a channel name under the
	// gateway's configuration (codec.ValidChannel with its length limit).
	ValidChannel(name string) bool
}

// Member is one connection in a channel's presence.
type Member struct {
	Client string `json:"client"`
	User   string `json:"user"`
}

// PublishResult is where a publication landed.
type PublishResult struct {
	Offset   uint64
	Epoch    string
	Replayed bool // the idempotency key had already published it
}

// Publication is one entry of a channel's history.
type Publication struct {
	Offset uint64
	Data   []byte
}

// Errors a Backend wraps (fmt.Errorf("...: %w", api.ErrUnavailable)) to
// choose the status; any other error is a 500. The error's text is the
// reason the caller sees.
var (
	// ErrInvalid: the request is wrong and retrying it will not help
	// (payload over the gateway's limit, feature disabled for the
	// channel): 400.
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: the gateway cannot serve the request now (broker
	// down, delivery queue full, draining, timed out): 503, retry later.
	// A publish that fails with it was not published.
	ErrUnavailable = errors.New("unavailable")
	// ErrOutcomeUnknown: a publish whose answer was lost (broker timeout,
	// broker connection lost mid-call): it may have been published. 503;
	// retry with the same idempotency_key.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrKeyReused: the idempotency key already published other data on
	// this channel: 409.
	ErrKeyReused = errors.New("idempotency_key already used with different data on this channel")
)
