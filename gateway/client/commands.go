package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/codec"
)

// ErrOutcomeUnknown is wrapped by a Publish error when the publication may
// have been published (the reply was lost to a disconnect, ctx ended after
// the publish was sent, or the server answered 113) and retrying was not
// safe — there was no idempotency key —, not possible (ctx ended) or no
// attempts were left.
var ErrOutcomeUnknown = errors.New("client: the publish outcome is unknown (it may have been published)")

// PublishResult is a successful publish's reply.
type PublishResult struct {
	Offset   uint64 // the publication's position (0: the channel keeps no history)
	Epoch    string
	Replayed bool // an earlier attempt with the same idempotency key had published it
}

// PublishOption modifies one Publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	key []byte
}

// WithIdempotencyKey names the publication (1–256 bytes, e.g. from
// NewIdempotencyKey): however often it is sent, through any gateway
// instance, the channel gets it at most once (codec/README.md §3). An
// empty key means none.
func WithIdempotencyKey(key string) PublishOption {
	return func(o *publishOptions) {
		if key != "" {
			o.key = []byte(key)
		}
	}
}

// NewIdempotencyKey returns 128 random bits, base64url encoded.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Publish publishes data on channel (on a JSON connection data must be
// JSON text) and returns its position. It waits for a connection while the
// client is reconnecting (ctx bounds everything).
//
// Retries, up to Options.PublishAttempts sends with backoff between them:
// 107 (rate limited) and 111 (internal error, nothing published) are
// always retried; a lost reply (the connection dropped) and 113 (outcome
// unknown) only with an idempotency key, which makes the retry safe —
// without one they return an error wrapping ErrOutcomeUnknown. So does a
// ctx that ends after the publish was sent (it wraps ctx's error too).
// Give every publication that must not be lost or doubled a key.
func (c *Client) Publish(ctx context.Context, channel string, data []byte, opts ...PublishOption) (PublishResult, error) {
	var po publishOptions
	for _, o := range opts {
		o(&po)
	}
	cmd := codec.Command{Cmd: codec.CmdPublish, Channel: []byte(channel), Data: data, IdempotencyKey: po.key}
	if data == nil {
		cmd.Data = []byte{}
	}
	var res PublishResult
	err := c.do(ctx, &cmd, cmd.IdempotencyKey != nil, func(f *codec.ServerFrame) {
		res = PublishResult{Offset: f.Offset, Epoch: string(f.Epoch), Replayed: f.Replayed}
	})
	return res, err
}

// HistoryOptions select publications from a channel's history.
type HistoryOptions struct {
	// Since: only publications after this offset (0: all retained).
	Since uint64
	// Epoch, when set, makes the call fail with 112 unless the channel's
	// history is still this epoch (Since belongs to it) and, unless
	// Reverse, still holds the publication right after Since: with Epoch,
	// Since 0 asks for the epoch from its first publication.
	Epoch   string
	Limit   int  // at most this many (0: the server's default)
	Reverse bool // newest first (still only those after Since)
}

// HistoryResult is a history reply.
type HistoryResult struct {
	Publications []Publication
	Epoch        string
}

// History reads a channel's retained publications. Like every read it is
// retried on 107, 111 and a lost connection.
func (c *Client) History(ctx context.Context, channel string, o HistoryOptions) (HistoryResult, error) {
	cmd := codec.Command{Cmd: codec.CmdHistory, Channel: []byte(channel), Limit: o.Limit, Reverse: o.Reverse}
	if o.Since != 0 || o.Epoch != "" {
		cmd.Offset, cmd.HasOffset = o.Since, true
	}
	if o.Epoch != "" {
		cmd.Epoch, cmd.HasEpoch = []byte(o.Epoch), true
	}
	var res HistoryResult
	err := c.do(ctx, &cmd, true, func(f *codec.ServerFrame) {
		res = HistoryResult{Epoch: string(f.Epoch), Publications: make([]Publication, len(f.Publications))}
		for i, p := range f.Publications {
			res.Publications[i] = Publication{Channel: channel, Offset: p.Offset, Epoch: res.Epoch, Data: bytes.Clone(p.Data)}
		}
	})
	return res, err
}

// Member is one connection subscribed to a channel.
type Member struct {
	Client string // connection id
	User   string // "" for anonymous connections
}

// Presence lists the connections subscribed to channel (namespaces with
// presence on).
func (c *Client) Presence(ctx context.Context, channel string) ([]Member, error) {
	var out []Member
	err := c.do(ctx, &codec.Command{Cmd: codec.CmdPresence, Channel: []byte(channel)}, true, func(f *codec.ServerFrame) {
		out = make([]Member, len(f.Clients))
		for i, m := range f.Clients {
			out[i] = Member{Client: m.Client, User: m.User}
		}
	})
	return out, err
}

// PresenceStats counts a channel's connections and distinct users.
func (c *Client) PresenceStats(ctx context.Context, channel string) (clients, users uint64, err error) {
	err = c.do(ctx, &codec.Command{Cmd: codec.CmdPresenceStats, Channel: []byte(channel)}, true, func(f *codec.ServerFrame) {
		clients, users = f.NumClients, f.NumUsers
	})
	return clients, users, err
}

// do sends cmd and waits for its reply, retrying what the protocol allows:
// 107 and 111 always, a lost reply and 113 only when safe (idempotent:
// a read, or a publish with an idempotency key). keep copies the reply out
// of the frame (it runs on the reader goroutine).
func (c *Client) do(ctx context.Context, cmd *codec.Command, idempotent bool, keep func(*codec.ServerFrame)) error {
	unknown := false // an attempt may have taken effect
	for attempt := 1; ; attempt++ {
		s, err := c.session(ctx)
		if err == nil {
			err = s.roundTrip(ctx, cmd, keep)
		}
		if err == nil {
			return nil
		}
		var se *ServerError
		notSent := errors.Is(err, errNotSent)
		lost := !notSent && (errors.Is(err, ErrDisconnected) || errors.Is(err, errNoReply) ||
			(errors.As(err, &se) && se.Code == codec.CodeOutcomeUnknown))
		unknown = unknown || lost
		retry := notSent || (errors.As(err, &se) && se.Retryable() && se.Code != codec.CodeOutcomeUnknown) || (lost && idempotent)
		if !retry || attempt >= c.opts.PublishAttempts || !c.pause(ctx, attempt) {
			if unknown && cmd.Cmd == codec.CmdPublish {
				return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			}
			return err
		}
	}
}

// pause waits before a command's next attempt; false when ctx or the
// client ended first.
func (c *Client) pause(ctx context.Context, attempt int) bool {
	t := time.NewTimer(c.opts.Backoff.delay(attempt-1, verdict{}))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-c.done:
	}
	return false
}
