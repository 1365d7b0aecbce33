package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/codec"
)

// Subscription is one channel's subscription. It keeps the channel's
// position (epoch and last delivered offset) across reconnects.
type Subscription struct {
	c       *Client
	channel string
	handler func(Event)

	// Guarded by c.mu.
	state subState
	sess  *session // the session its subscribe was sent on
	// inFlight: the session a subscribe of it was written on whose reply
	// has not come yet (none while it waits to send or to retry).
	inFlight  *session
	epoch     string
	offset    uint64 // the last offset delivered (or the top it started from)
	positions bool   // epoch/offset hold a position the server gave
	confirmed chan error
	// unsubscribed: the application called Unsubscribe, so its handler is
	// not called again, not even for events already queued. A subscription
	// the server or the client's stop ended is removed too, but what
	// arrived before that is still delivered, then Unsubscribed.
	unsubscribed bool
}

type subState uint8

const (
	subPending     subState = iota // waits for a connection
	subSubscribing                 // subscribe sent on sess, no reply yet
	subActive                      // the server confirmed it on sess
	subRemoved                     // unsubscribed or the client stopped
)

// Channel returns the subscription's channel.
func (s *Subscription) Channel() string { return s.channel }

// Position returns the last offset received for the handler (delivered or
// queued for it, up to Options.QueueSize ahead) and its epoch: where a
// resume starts.
func (s *Subscription) Position() (offset uint64, epoch string) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.offset, s.epoch
}

// confirm reports the first subscribe outcome to Subscribe (once).
// Called with c.mu held.
func (s *Subscription) confirm(err error) {
	if s.confirmed != nil {
		s.confirmed <- err
		s.confirmed = nil
	}
}

// Subscribe subscribes to channel and returns once the server confirmed it
// (handler then gets a Subscribed event first). handler is called on the
// Client's event goroutine, one event at a time, for every publication and
// notice of the channel; it should return quickly (see Options.QueueSize).
// The subscription survives reconnects until Unsubscribe or the client
// stops. If ctx ends first, the subscription is abandoned.
func (c *Client) Subscribe(ctx context.Context, channel string, handler func(Event)) (*Subscription, error) {
	if !codec.ValidChannel([]byte(channel), 0) {
		return nil, &ServerError{Code: codec.CodeBadChannel, Message: fmt.Sprintf("bad channel name %q", channel)}
	}
	if handler == nil {
		return nil, fmt.Errorf("client: Subscribe(%q) without a handler", channel)
	}
	sub := &Subscription{c: c, channel: channel, handler: handler, confirmed: make(chan error, 1)}
	confirmed := sub.confirmed
	c.mu.Lock()
	if err := c.stoppedLocked(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	if c.subs[channel] != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrAlreadySubscribed, channel)
	}
	c.subs[channel] = sub
	s := c.sess
	if s != nil {
		sub.sess, sub.state = s, subSubscribing
	}
	c.mu.Unlock()
	if s != nil {
		c.sendSubscribe(s, sub)
	}
	select {
	case err := <-confirmed:
		if err != nil {
			return nil, err
		}
		return sub, nil
	case <-ctx.Done():
		uctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
		defer cancel()
		_ = sub.Unsubscribe(uctx)
		return nil, fmt.Errorf("client: subscribe %q: %w", channel, ctx.Err())
	}
}

// stoppedLocked returns the final error once the client has stopped.
func (c *Client) stoppedLocked() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Unsubscribe ends the subscription: its handler is not called again
// (except for an event being delivered at this moment). ctx bounds the
// wait for the server's reply; the subscription ends locally either way.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	if s.state == subRemoved {
		// Ended by the server or the client's stop: what it still has
		// queued is silenced all the same.
		s.unsubscribed = true
		c.mu.Unlock()
		return nil
	}
	sess, wasActive := s.sess, s.state == subActive
	if s.state == subSubscribing && s.inFlight != nil {
		s.inFlight.startUndo(s.channel)
	}
	s.state, s.unsubscribed = subRemoved, true
	s.confirm(fmt.Errorf("client: %q unsubscribed", s.channel))
	if c.subs[s.channel] == s {
		delete(c.subs, s.channel)
	}
	c.mu.Unlock()
	// A subscribe still in flight is undone by its reply (onSubscribed).
	if !wasActive {
		return nil
	}
	err := sess.roundTrip(ctx, &codec.Command{Cmd: codec.CmdUnsubscribe, Channel: []byte(s.channel)}, nil)
	var se *ServerError
	switch {
	case errors.As(err, &se) && se.Code == codec.CodeNotSubscribed:
		return nil
	case errors.Is(err, ErrDisconnected):
		return nil // gone with the connection
	}
	return err
}

// live reports whether events may still be delivered to sub: until the
// application unsubscribes it.
func (c *Client) live(sub *Subscription) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !sub.unsubscribed
}

// sendSubscribe sends sub's subscribe on s, resuming from its position,
// unless sub no longer waits for it there.
func (c *Client) sendSubscribe(s *session, sub *Subscription) {
	cmd := &codec.Command{Cmd: codec.CmdSubscribe, Channel: []byte(sub.channel)}
	c.mu.Lock()
	if sub.state != subSubscribing || sub.sess != s {
		c.mu.Unlock()
		return
	}
	resume := sub.positions && sub.epoch != ""
	if resume {
		cmd.Offset, cmd.HasOffset = sub.offset, true
		cmd.Epoch, cmd.HasEpoch = []byte(sub.epoch), true
	}
	resubscribe := sub.confirmed == nil // not the first subscribe
	sub.inFlight = s
	c.mu.Unlock()
	// Errors end the session; the next one resubscribes.
	_ = s.send(cmd, func(f *codec.ServerFrame, err error) {
		if err == nil {
			c.onSubscribed(s, sub, f, resubscribe)
		}
	})
}

// onSubscribed applies a subscribe reply (reader goroutine). The reply
// comes before any publication of the channel on this connection.
func (c *Client) onSubscribed(s *session, sub *Subscription, f *codec.ServerFrame, resubscribe bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	answered := sub.inFlight == s
	if answered {
		sub.inFlight = nil
	}
	if sub.state != subSubscribing || sub.sess != s {
		if sub.state == subRemoved && answered {
			s.undo(sub.channel, f.ErrCode == 0)
		}
		return
	}
	if f.ErrCode != 0 {
		c.onSubscribeError(s, sub, &ServerError{Code: f.ErrCode, Message: string(f.ErrMessage)}, resubscribe)
		return
	}
	ev := Subscribed{Channel: sub.channel, Resumed: resubscribe}
	switch {
	case f.HasRecovered && f.Recovered && string(f.Epoch) == sub.epoch:
		ev.Recovered = true // the position stays: the missed ones follow
	default:
		if f.HasRecovered {
			ev.Reason = string(f.Reason)
		} else if resubscribe {
			ev.Reason = "no position to resume from (the channel keeps no history)"
		}
		sub.epoch, sub.offset, sub.positions = string(f.Epoch), f.Offset, true
	}
	ev.Offset, ev.Epoch = sub.offset, sub.epoch
	sub.state = subActive
	c.events.push(queued{sub: sub, ev: ev})
	sub.confirm(nil)
}

// onSubscribeError handles a refused subscribe: 107/111 are retried on the
// same connection after a backoff delay; anything else ends the
// subscription (the first Subscribe returns the error, a resubscription
// gets an Unsubscribed event). Called with c.mu held.
func (c *Client) onSubscribeError(s *session, sub *Subscription, err *ServerError, resubscribe bool) {
	if err.Code == codec.CodeRateLimited || err.Code == codec.CodeInternal ||
		err.Code == codec.CodeAlreadySubscribed && s.undoing[sub.channel] > 0 {
		// 104 here: the server still has the subscribe the application
		// gave up, not yet undone; this one goes through after that.
		s.retrySubscribe(sub)
		return
	}
	sub.state = subRemoved
	delete(c.subs, sub.channel)
	if !resubscribe {
		sub.confirm(err)
		return
	}
	c.log.Warn("resubscribe refused", "channel", sub.channel, "err", err)
	c.events.push(queued{sub: sub, ev: Unsubscribed{Channel: sub.channel, Err: err}})
}

// startUndo notes that the application gave up a subscribe of channel in
// flight on s: its reply will undo it (see undo). Called with c.mu held.
func (s *session) startUndo(channel string) {
	if s.undoing == nil {
		s.undoing = map[string]int{}
	}
	s.undoing[channel]++
}

// undo answers the reply to a subscribe of channel that the application
// gave up while it was in flight: one that succeeded is unsubscribed. Until
// the server has answered that, a new subscribe of channel refused with 104
// is retried (onSubscribeError). Called with c.mu held, on the reader
// goroutine.
func (s *session) undo(channel string, subscribed bool) {
	done := func() {
		if s.undoing[channel]--; s.undoing[channel] <= 0 {
			delete(s.undoing, channel)
		}
	}
	if !subscribed {
		done()
		return
	}
	s.wg.Add(1)
	go func() { // the reader must not wait on a write while it holds c.mu
		defer s.wg.Done()
		cmd := &codec.Command{Cmd: codec.CmdUnsubscribe, Channel: []byte(channel)}
		err := s.send(cmd, func(*codec.ServerFrame, error) { // its reply, or the session's end
			s.c.mu.Lock()
			done()
			s.c.mu.Unlock()
		})
		if errors.Is(err, errNotSent) { // the reply func was not kept: it will not be called
			s.c.mu.Lock()
			done()
			s.c.mu.Unlock()
		}
	}()
}

// retrySubscribe sends sub's subscribe again after a delay, on the same
// session (owned by it: the session's end stops the wait).
func (s *session) retrySubscribe(sub *Subscription) {
	delay := s.c.opts.Backoff.delay(2, verdict{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			s.c.sendSubscribe(s, sub)
		}
	}()
}
