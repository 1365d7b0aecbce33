package client

import (
	"bytes"
	"context"
	"errors"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/codec"
)

// handleFrame applies one server frame, on the session's reader goroutine,
// in the order the server sent them. An error ends the session.
func (c *Client) handleFrame(s *session, f *codec.ServerFrame) error {
	switch f.Type {
	case codec.FrameReply:
		if fn := s.takeReply(f.ID); fn != nil {
			fn(f, nil)
		} else if f.ErrCode != 0 {
			c.log.Warn("error reply", "id", f.ID, "code", f.ErrCode, "message", string(f.ErrMessage))
		}
	case codec.FrameMessage, codec.FrameGap, codec.FrameEpoch, codec.FrameJoin, codec.FrameLeave, codec.FrameUnsubscribe:
		return c.onPush(s, f)
	case codec.FrameRefresh:
		s.refresh()
	}
	return nil // FrameUnknown: a newer server's push
}

// onPush applies a channel push to its subscription. A push for a channel
// this session is not subscribed to (any more) is ignored.
func (c *Client) onPush(s *session, f *codec.ServerFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub := c.subs[string(f.Channel)]
	if sub == nil || sub.state != subActive || sub.sess != s {
		return nil
	}
	// Checked before the position moves: a publication the queue has no
	// room for is not counted as seen, so the resume brings it back. A
	// notice (gap, epoch, unsubscribe) is applied whatever the queue holds:
	// dropping it with the connection would lose what it says (an ended
	// subscription would be renewed).
	if f.Type == codec.FrameMessage || f.Type == codec.FrameJoin || f.Type == codec.FrameLeave {
		if !c.events.room(2) {
			return ErrQueueFull
		}
	}
	switch f.Type {
	case codec.FrameMessage:
		c.onMessage(sub, f)
	case codec.FrameGap:
		// The hub announces a gap to every subscriber of the channel; one
		// that resumed may have been given part of it, or all, already.
		if f.To <= sub.offset {
			return nil
		}
		from := max(f.From, sub.offset+1)
		sub.offset = f.To
		c.events.push(queued{sub: sub, ev: Gap{Channel: sub.channel, From: from, To: f.To}})
	case codec.FrameEpoch:
		if string(f.Epoch) == sub.epoch {
			return nil // the subscribe reply already named it
		}
		c.newEpoch(sub, string(f.Epoch), 0)
	case codec.FrameJoin:
		c.events.push(queued{sub: sub, ev: Join{Channel: sub.channel, Client: string(f.Client), User: string(f.User)}})
	case codec.FrameLeave:
		c.events.push(queued{sub: sub, ev: Leave{Channel: sub.channel, Client: string(f.Client), User: string(f.User)}})
	case codec.FrameUnsubscribe:
		sub.state = subRemoved
		delete(c.subs, sub.channel)
		c.log.Info("the server ended a subscription", "channel", sub.channel)
		c.events.push(queued{sub: sub, ev: Unsubscribed{Channel: sub.channel, Err: ErrServerUnsubscribed}})
	}
	return nil
}

// onMessage delivers a publication unless it was delivered already
// (codec/README.md §10): within an epoch offsets only grow, so an offset
// at or below the last delivered one is a repeat from a resume or a
// repair. A message of another epoch starts that epoch. A message without
// an offset (a channel without history) cannot be checked and is always
// delivered; one without an epoch (an older server) belongs to the
// subscription's epoch.
func (c *Client) onMessage(sub *Subscription, f *codec.ServerFrame) {
	switch {
	case f.Offset == 0 && len(f.Epoch) == 0:
	case len(f.Epoch) != 0 && string(f.Epoch) != sub.epoch:
		c.newEpoch(sub, string(f.Epoch), f.Offset)
	case f.Offset <= sub.offset:
		return // a duplicate
	default:
		sub.offset = f.Offset
	}
	c.events.push(queued{sub: sub, ev: Publication{Channel: sub.channel, Offset: f.Offset, Epoch: sub.epoch,
		Data: bytes.Clone(f.Data)}})
}

// newEpoch moves sub to another epoch and tells its handler — unless sub
// had no epoch yet (a channel whose history began after the subscribe):
// nothing was lost then. Called with c.mu held.
func (c *Client) newEpoch(sub *Subscription, epoch string, offset uint64) {
	if sub.epoch == "" && sub.offset == 0 {
		sub.epoch, sub.offset = epoch, offset
		return
	}
	c.events.push(queued{sub: sub, ev: EpochChanged{Channel: sub.channel, Previous: sub.epoch, Epoch: epoch, LastOffset: sub.offset}})
	sub.epoch, sub.offset = epoch, offset
}

// refresh answers the server's refresh push: a new token from the token
// source, sent with the refresh command on this connection. A failing
// token source stops the client; a refused token is left to the server,
// which closes with 4004, after which the next attempt gets a new token.
func (s *session) refresh() {
	c := s.c
	if c.opts.TokenSource == nil {
		c.log.Warn("the server asks for a new token and there is no TokenSource: it will close the connection (4004)")
		return
	}
	s.mu.Lock()
	busy := s.refreshing
	s.refreshing = true
	s.mu.Unlock()
	if busy {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			s.refreshing = false
			s.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.DialTimeout)
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		token, err := c.token(ctx)
		if err != nil {
			if errors.Is(err, ErrTokenSource) {
				s.fail(websocket.StatusNormalClosure, "token source failed", err)
			}
			return
		}
		err = s.roundTrip(ctx, &codec.Command{Cmd: codec.CmdRefresh, Token: []byte(token)}, nil)
		if err != nil {
			c.log.Warn("token refresh failed", "err", err)
			return
		}
		c.log.Debug("token refreshed")
	}()
}
