package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/api"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/presence"
)

// APIBackend is the server as the HTTP API (gateway/api) sees it.
func (s *Server) APIBackend() api.Backend { return apiBackend{s} }

type apiBackend struct{ s *Server }

// wait turns a callback API into a call bounded by ctx.
func wait[T any](ctx context.Context, start func(done func(T, error))) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	start(func(v T, err error) { ch <- result{v, err} })
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%w: %w", api.ErrUnavailable, ctx.Err())
	}
}

func (b apiBackend) Publish(ctx context.Context, channel string, data []byte, key string) (api.PublishResult, error) {
	if len(data) > b.s.cfg.MaxPublicationBytes {
		return api.PublishResult{}, fmt.Errorf("%w: data is %d bytes, over the limit of %d (--max-publication-bytes)",
			api.ErrInvalid, len(data), b.s.cfg.MaxPublicationBytes)
	}
	if !b.s.hub.AdmitPublish() {
		return api.PublishResult{}, fmt.Errorf("%w: %v", api.ErrUnavailable, broker.ErrOverloaded)
	}
	res, err := wait(ctx, func(done func(broker.PublishResult, error)) {
		b.s.broker.Publish(channel, data, broker.PublishOptions{IdempotencyKey: key}, done)
	})
	switch {
	case err == nil:
		return api.PublishResult{Offset: res.Offset, Epoch: res.Epoch, Replayed: res.Replayed}, nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Timed out waiting: the publish may still complete.
		err = fmt.Errorf("%w: %v", api.ErrOutcomeUnknown, err)
	case errors.Is(err, broker.ErrKeyReused):
		err = fmt.Errorf("%w: %v", api.ErrKeyReused, err)
	case errors.Is(err, broker.ErrOutcomeUnknown):
		err = fmt.Errorf("%w: %v", api.ErrOutcomeUnknown, err)
	case errors.Is(err, broker.ErrOverloaded), errors.Is(err, broker.ErrUnavailable):
		err = fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return api.PublishResult{}, err
}

// Disconnect and Unsubscribe act on this instance's connections at once and
// on the other instances' through the broker (relay.go); the count is of
// this instance's connections that matched.

func (b apiBackend) Disconnect(ctx context.Context, user, client string, code uint16, reason string) (int, error) {
	if code == 0 {
		code = CloseDisconnected
	}
	if reason == "" && code == CloseDisconnected {
		reason = "disconnected by the server"
	}
	return b.runEverywhere(ctx, serverCommand{Op: opDisconnect, User: user, Client: client, Code: code, Reason: reason})
}

func (b apiBackend) Unsubscribe(ctx context.Context, user, client, channel string) (int, error) {
	return b.runEverywhere(ctx, serverCommand{Op: opUnsubscribe, User: user, Client: client, Channel: channel})
}

// errPresenceOff and errHistoryOff: the channel's namespace keeps none,
// as the WebSocket commands answer with error 110.
var (
	errPresenceOff = fmt.Errorf("%w: presence is off for this namespace", api.ErrInvalid)
	errHistoryOff  = fmt.Errorf("%w: history is off for this namespace", api.ErrInvalid)
)

func (b apiBackend) Presence(ctx context.Context, channel string) ([]api.Member, error) {
	if !b.s.ns.For(channel).Presence {
		return nil, errPresenceOff
	}
	ms, err := wait(ctx, func(done func([]presence.Member, error)) { b.s.presence.Members(channel, done) })
	out := make([]api.Member, len(ms))
	for i, m := range ms {
		out[i] = api.Member{Client: m.Client, User: m.User}
	}
	return out, readError(err)
}

func (b apiBackend) PresenceStats(ctx context.Context, channel string) (int, int, error) {
	if !b.s.ns.For(channel).Presence {
		return 0, 0, errPresenceOff
	}
	st, err := wait(ctx, func(done func(presence.Stats, error)) { b.s.presence.Stats(channel, done) })
	return st.Clients, st.Users, readError(err)
}

func (b apiBackend) History(ctx context.Context, channel string, since uint64, limit int, reverse bool) ([]api.Publication, uint64, string, error) {
	if b.s.ns.For(channel).HistorySize <= 0 {
		return nil, 0, "", errHistoryOff
	}
	res, err := wait(ctx, func(done func(broker.HistoryResult, error)) {
		b.s.broker.History(channel, broker.HistoryQuery{Since: since, Limit: limit, Reverse: reverse}, done)
	})
	out := make([]api.Publication, len(res.Publications))
	for i, p := range res.Publications {
		out[i] = api.Publication{Offset: p.Offset, Data: p.Data}
	}
	return out, res.Position.Offset, res.Position.Epoch, readError(err)
}

// readError classifies a failed read of the broker or presence store:
// one that cannot be answered now (down, closed at shutdown, queue full)
// is api.ErrUnavailable, a 503 the caller retries, as README's status
// table says; anything else (an error reply, a malformed answer) stays a
// 500. wait's timeout is api.ErrUnavailable already.
func readError(err error) error {
	switch {
	case err == nil, errors.Is(err, api.ErrUnavailable):
		return err
	case errors.Is(err, broker.ErrUnavailable), errors.Is(err, broker.ErrOverloaded),
		errors.Is(err, presence.ErrUnavailable), errors.Is(err, presence.ErrClosed),
		errors.Is(err, presence.ErrOverloaded):
		return fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	}
	return err
}

func (b apiBackend) Channels(context.Context) ([]string, error) { return b.s.hub.Channels(), nil }

func (b apiBackend) Info(context.Context) (map[string]any, error) {
	return map[string]any{
		"node":           b.s.cfg.NodeID,
		"connections":    b.s.metrics.ConnsOpen.Load(),
		"channels":       b.s.hub.Stats().Channels.Load(),
		"uptime_seconds": int64(time.Since(b.s.start).Seconds()),
		"ready":          b.s.Ready(),
	}, nil
}

func (b apiBackend) ValidChannel(name string) bool {
	return codec.ValidChannel([]byte(name), b.s.cfg.MaxChannelBytes)
}
