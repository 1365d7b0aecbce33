package gateway

import (
	"errors"
	"slices"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/presence"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// session is the client protocol state of a /ws connection: its encoding,
// who it is and what it subscribed to. It is touched only by the
// connection's worker, except subs at close (after the worker is done).
type session struct {
	enc      codec.Encoding
	id       string // client id, unique per connection: node-counter
	identity Identity
	subs     []string // channels, ≤ MaxChannelsPerConn
	limiter  limiter  // command rate
	asked    bool     // a refresh was requested (token expired)
}

func newSession(protocol, id string, identity Identity) *session {
	enc := codec.Msgpack
	if protocol == ProtocolJSON {
		enc = codec.JSON
	}
	return &session{enc: enc, id: id, identity: identity}
}

// Encoding implements hub.Subscriber.
func (c *conn) Encoding() codec.Encoding { return c.sess.enc }

// Enqueue implements hub.Subscriber: it queues a run of one channel's
// frames under one lock.
func (c *conn) Enqueue(pubs []*codec.Publication, frames [][]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	wasEmpty := c.out == nil
	for i, p := range pubs {
		if !c.enqueueLocked(p, frames[i]) {
			return true // closing as a slow consumer: the flush sends the close
		}
	}
	return wasEmpty && c.out != nil
}

// enqueueLocked queues one frame. Live frames of a channel being recovered
// are held back (counted against the queue limit) until its history has
// been queued. A connection is not sent its own join/leave events (it has
// its subscribe/unsubscribe reply instead). It returns false when the
// connection started closing as a slow consumer.
func (c *conn) enqueueLocked(p *codec.Publication, frame []byte) bool {
	event := p.Kind != codec.KindPublication
	if event && string(p.Client) == c.sess.id { // sess and its id never change once subscribed
		return true
	}
	if top, ok := c.resumedTop[string(p.Channel)]; ok {
		// Right after a resume, Pub/Sub may still bring publications the
		// history read already replayed: drop those, once.
		if p.Offset <= top && p.Kind == codec.KindPublication {
			return true
		}
		delete(c.resumedTop, string(p.Channel))
	}
	if r := c.recovering[string(p.Channel)]; r != nil {
		r.held = append(r.held, heldFrame{offset: p.Offset, event: event, frame: frame})
		r.bytes += len(frame)
		if c.queuedBytesLocked()+r.bytes > c.srv.cfg.MaxQueueBytes {
			c.srv.metrics.SlowConsumers.Add(1)
			c.startCloseLocked(CloseSlowConsumer, "slow consumer", true)
			return false
		}
		return true
	}
	c.queueLocked(frame)
	return true
}

func (c *conn) queuedBytesLocked() int {
	if c.out == nil {
		return 0
	}
	return c.out.Len()
}

// recovery is a channel's resume in progress: the live frames that
// arrived meanwhile.
type recovery struct {
	held  []heldFrame
	bytes int
}

type heldFrame struct {
	offset uint64
	event  bool // a join/leave push: no offset, always released
	frame  []byte
}

// Flush implements hub.Subscriber.
func (c *conn) Flush() {
	c.mu.Lock()
	c.flushLocked(false)
	c.mu.Unlock()
}

// onCommand runs one client command. The frame must match the negotiated
// encoding (binary for MessagePack, text for JSON); a frame that is not a
// command at all closes the connection with 1007, a bad command whose id
// could be read gets an error reply.
func (c *conn) onCommand(op wsframe.Opcode, payload []byte) error {
	s := c.sess
	if (s.enc == codec.JSON) != (op == wsframe.OpText) {
		return &wsframe.Error{Code: wsframe.CloseUnsupported, Reason: "wrong frame type for the subprotocol"}
	}
	var cmd codec.Command
	limits := codec.Limits{MaxChannelBytes: c.srv.cfg.MaxChannelBytes, MaxDataBytes: c.srv.cfg.MaxPublicationBytes}
	if err := limits.DecodeCommand(s.enc, payload, &cmd); err != nil {
		var derr *codec.DecodeError
		if errors.As(err, &derr) && derr.IDKnown {
			c.reply(codec.AppendError(nil, s.enc, derr.ID, derr.Code, derr.Message()))
			return nil
		}
		return &wsframe.Error{Code: wsframe.CloseInvalidPayload, Reason: "undecodable command"}
	}
	if !c.allowCommand(cmd.ID) {
		return c.rateLimitError()
	}
	switch cmd.Cmd {
	case codec.CmdPing:
		c.replyOK(codec.Reply{ID: cmd.ID, Cmd: codec.CmdPing})
	case codec.CmdSubscribe:
		c.subscribe(&cmd)
	case codec.CmdUnsubscribe:
		c.unsubscribe(&cmd)
	case codec.CmdPublish:
		c.publish(&cmd)
	case codec.CmdHistory:
		c.history(&cmd)
	case codec.CmdPresence, codec.CmdPresenceStats:
		c.presence(&cmd)
	case codec.CmdRefresh:
		c.refresh(&cmd)
	default:
		c.replyError(cmd.ID, codec.CodeNotAvailable, "command not available")
	}
	return nil
}

func (c *conn) replyError(id uint32, code codec.ErrorCode, msg string) {
	c.reply(codec.AppendError(nil, c.sess.enc, id, code, msg))
}

// replyOK queues a success reply — unless the command's id was 0: "no
// reply wanted" (codec/README.md §3; errors are replied to all the same).
func (c *conn) replyOK(r codec.Reply) {
	if r.ID != 0 {
		c.reply(codec.AppendReply(nil, c.sess.enc, r))
	}
}

// replyOKAsync is replyOK for broker callbacks (see replyAsync).
func (c *conn) replyOKAsync(r codec.Reply) {
	if r.ID != 0 {
		c.replyAsync(codec.AppendReply(nil, c.sess.enc, r))
	}
}

// reply frames an encoded reply and queues it (flushed after the read batch).
func (c *conn) reply(payload []byte) { c.send(c.frame(payload)) }

// replyAsync is reply for broker callbacks, which may run on this
// connection's worker (memory broker) or on another goroutine (Redis): it
// flushes itself whenever it made the queue non-empty, since nobody else
// may be about to. (Trying to tell "still on the worker, which flushes
// later" from "after the worker's last flush" is a race that loses replies.)
func (c *conn) replyAsync(payload []byte) {
	c.mu.Lock()
	c.queueLocked(c.frame(payload))
	c.flushLocked(false) // even if others queued first: they may be waiting on us
	c.mu.Unlock()
}

// checkChannel validates a channel name, replying with an error if bad.
func (c *conn) checkChannel(cmd *codec.Command) bool {
	if !codec.ValidChannel(cmd.Channel, c.srv.cfg.MaxChannelBytes) {
		c.replyError(cmd.ID, codec.CodeBadChannel, "invalid channel name")
		return false
	}
	return true
}

func (c *conn) subscribe(cmd *codec.Command) {
	s := c.sess
	if !c.checkChannel(cmd) {
		return
	}
	if slices.Contains(s.subs, string(cmd.Channel)) {
		c.replyError(cmd.ID, codec.CodeAlreadySubscribed, "already subscribed")
		return
	}
	if len(s.subs) >= c.srv.cfg.MaxChannelsPerConn {
		c.replyError(cmd.ID, codec.CodeTooManyChannels, "too many channels")
		return
	}
	ch := string(cmd.Channel) // own copy: cmd aliases the read buffer
	ns := c.srv.ns.For(ch)
	if !c.maySubscribe(ns, ch, cmd.Token) {
		c.replyError(cmd.ID, codec.CodePermission, "not allowed to subscribe to "+ch)
		return
	}
	if ns.Presence {
		c.srv.presence.Join(ch, presence.Member{Client: s.id, User: s.identity.UserID})
	}
	resume := cmd.HasOffset && ns.Recovery
	noRecovery := cmd.HasOffset && !ns.Recovery // asked to resume where it is off
	var rec *recovery                           // this subscribe's resume; an unsubscribe cancels it
	if resume {
		rec = &recovery{}
		c.mu.Lock()
		if c.recovering == nil {
			c.recovering = map[string]*recovery{}
		}
		c.recovering[ch] = rec
		c.mu.Unlock()
	}
	if err := c.srv.hub.Subscribe(ch, c); err != nil {
		c.endRecovery(ch, rec, nil)
		c.replyError(cmd.ID, codec.CodeInternal, err.Error())
		return
	}
	s.subs = append(s.subs, ch)
	if ns.JoinLeave {
		// On the worker, like the leave in c.leave: one connection's join
		// and leave of a channel go to the broker in that order.
		c.srv.broker.PublishEvent(ch, codec.KindJoin, s.id, s.identity.UserID)
	}
	id, since, epoch := cmd.ID, cmd.Offset, string(cmd.Epoch)
	c.srv.broker.Position(ch, func(pos broker.Position, err error) {
		switch {
		case err != nil:
			c.endRecovery(ch, rec, nil)
			c.replyAsync(codec.AppendError(nil, s.enc, id, codec.CodeInternal, err.Error()))
		case !resume:
			c.srv.hub.Observe(ch, pos)
			r := codec.Reply{ID: id, Cmd: codec.CmdSubscribe, Offset: pos.Offset, Epoch: pos.Epoch}
			if noRecovery {
				r.Resumed, r.Reason = true, "recovery is off for this namespace"
			}
			c.replyOKAsync(r)
		default:
			// The subscription is live (held back): read what was missed.
			c.srv.broker.History(ch, broker.HistoryQuery{Since: since}, func(res broker.HistoryResult, err error) {
				c.finishRecovery(id, ch, rec, since, epoch, res, err)
			})
		}
	})
}

// finishRecovery answers a subscribe with a resume position: the reply
// (recovered or not, and why), the missed publications if recovered, then
// the live ones held back meanwhile that history did not already cover, in
// one go under the connection lock, so there is neither a gap nor a
// duplicate at the seam.
func (c *conn) finishRecovery(id uint32, ch string, rec *recovery, since uint64, epoch string, res broker.HistoryResult, err error) {
	enc := c.sess.enc
	if err != nil {
		c.endRecovery(ch, rec, nil)
		c.replyAsync(codec.AppendError(nil, enc, id, codec.CodeInternal, err.Error()))
		return
	}
	c.srv.hub.Observe(ch, res.Position)
	recovered, reason := recoverable(since, epoch, res)
	var frames [][]byte
	if id != 0 { // else no reply wanted
		frames = append(frames, c.frame(codec.AppendReply(nil, enc, codec.Reply{
			ID: id, Cmd: codec.CmdSubscribe, Offset: res.Position.Offset, Epoch: res.Position.Epoch,
			Resumed: true, Recovered: recovered, Reason: reason,
		})))
	}
	if recovered {
		for _, p := range res.Publications {
			frames = append(frames, c.frame(codec.AppendMessage(nil, enc, ch, p.Offset, res.Position.Epoch, p.Data)))
		}
	}
	c.endRecovery(ch, rec, func(r *recovery) {
		if r == nil { // unsubscribed meanwhile: just answer the subscribe
			if id != 0 {
				c.pushLocked(frames[0])
			}
			return
		}
		for _, h := range r.held {
			if h.event || h.offset > res.Position.Offset {
				frames = append(frames, h.frame)
			}
		}
		// Recovered frames may exceed MaxQueueBytes at once: they are
		// bounded by the channel's history size instead, and the limit
		// applies again to what follows.
		for _, f := range frames {
			c.pushLocked(f)
		}
		if recovered && len(res.Publications) > 0 {
			if c.resumedTop == nil {
				c.resumedTop = map[string]uint64{}
			}
			c.resumedTop[ch] = res.Position.Offset
		}
	})
}

// recoverable decides whether history covers (since, top] of the epoch the
// client knew.
func recoverable(since uint64, epoch string, res broker.HistoryResult) (bool, string) {
	top := res.Position.Offset
	pubs := res.Publications
	switch {
	case epoch != res.Position.Epoch:
		return false, "epoch changed"
	case since > top:
		return false, "position ahead of the stream"
	case since == top:
		return true, ""
	case len(pubs) == 0 || pubs[0].Offset != since+1 || pubs[len(pubs)-1].Offset != top:
		return false, "too old: history no longer has it"
	}
	return true, ""
}

// endRecovery ends the resume rec of ch. With fn (under c.mu) the caller
// queues what the resume produced — fn gets nil when rec was cancelled
// (unsubscribed meanwhile) — else held frames are just queued. Either way
// it flushes: it may run off the worker, with nobody else to.
func (c *conn) endRecovery(ch string, rec *recovery, fn func(*recovery)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.recovering[ch]
	if r != rec || r == nil {
		r = nil // cancelled, or superseded by a later subscribe's own resume
	} else {
		delete(c.recovering, ch)
	}
	switch {
	case fn != nil:
		fn(r)
	case r != nil:
		for _, h := range r.held {
			c.queueLocked(h.frame)
		}
	}
	c.flushLocked(false)
}

// frame wraps an encoded payload in a WebSocket frame of the session's type.
func (c *conn) frame(payload []byte) []byte {
	op := wsframe.OpBinary
	if c.sess.enc == codec.JSON {
		op = wsframe.OpText
	}
	return wsframe.Frame(op, payload)
}

// maxHistoryLimit bounds one history reply.
const maxHistoryLimit = 1000

func (c *conn) history(cmd *codec.Command) {
	if !c.checkChannel(cmd) {
		return
	}
	ch := string(cmd.Channel)
	ns := c.srv.ns.For(ch)
	switch {
	case ns.HistorySize <= 0:
		c.replyError(cmd.ID, codec.CodeNotAvailable, "history is off for this namespace")
		return
	case !c.maySubscribe(ns, ch, cmd.Token):
		c.replyError(cmd.ID, codec.CodePermission, "not allowed to read "+ch)
		return
	}
	s := c.sess
	id, epoch, hasEpoch := cmd.ID, string(cmd.Epoch), cmd.HasEpoch
	q := broker.HistoryQuery{Since: cmd.Offset, Limit: cmd.Limit, Reverse: cmd.Reverse}
	if q.Limit <= 0 || q.Limit > maxHistoryLimit {
		q.Limit = maxHistoryLimit
	}
	fromOffset := cmd.HasOffset && !cmd.Reverse
	c.srv.broker.History(ch, q, func(res broker.HistoryResult, err error) {
		if err != nil {
			c.replyAsync(codec.AppendError(nil, s.enc, id, codec.CodeInternal, err.Error()))
			return
		}
		if msg := unservable(res, q.Since, fromOffset, epoch, hasEpoch); msg != "" {
			c.replyAsync(codec.AppendError(nil, s.enc, id, codec.CodeUnrecoverable, msg))
			return
		}
		pubs := make([]codec.HistoryPublication, len(res.Publications))
		for i, p := range res.Publications {
			pubs[i] = codec.HistoryPublication{Offset: p.Offset, Data: p.Data}
		}
		c.replyOKAsync(codec.Reply{
			ID: id, Cmd: codec.CmdHistory, Offset: res.Position.Offset, Epoch: res.Position.Epoch, Publications: pubs,
		})
	})
}

// unservable says why a history read cannot answer what was asked (error
// 112), or "": the position was given in another epoch, or history no
// longer holds the publication right after the offset asked from.
func unservable(res broker.HistoryResult, since uint64, fromOffset bool, epoch string, hasEpoch bool) string {
	pubs := res.Publications
	switch {
	case hasEpoch && epoch != res.Position.Epoch:
		return "epoch changed: the channel's history is now " + res.Position.Epoch
	case fromOffset && since < res.Position.Offset && (len(pubs) == 0 || pubs[0].Offset != since+1):
		return "too old: history no longer has the publications after that offset"
	}
	return ""
}

func (c *conn) unsubscribe(cmd *codec.Command) {
	s := c.sess
	i := slices.Index(s.subs, string(cmd.Channel))
	if i < 0 {
		c.replyError(cmd.ID, codec.CodeNotSubscribed, "not subscribed")
		return
	}
	c.leave(s.subs[i])
	s.subs = slices.Delete(s.subs, i, i+1)
	c.replyOK(codec.Reply{ID: cmd.ID, Cmd: codec.CmdUnsubscribe})
}

func (c *conn) publish(cmd *codec.Command) {
	if !c.checkChannel(cmd) {
		return
	}
	s := c.sess
	if ch := string(cmd.Channel); !c.mayPublish(c.srv.ns.For(ch), ch) {
		c.replyError(cmd.ID, codec.CodePermission, "not allowed to publish to "+ch)
		return
	}
	id := cmd.ID
	if !c.srv.hub.AdmitPublish() {
		// Fan-out is behind: publishing more would risk drops. Nothing is
		// published; the client retries later.
		c.replyError(id, codec.CodeRateLimited, "overloaded, not published: retry later")
		return
	}
	data := append([]byte(nil), cmd.Data...) // own copy: it outlives the read buffer
	opts := broker.PublishOptions{IdempotencyKey: string(cmd.IdempotencyKey)}
	c.srv.broker.Publish(string(cmd.Channel), data, opts, func(res broker.PublishResult, err error) {
		if err != nil {
			code, msg := publishErrorCode(err)
			c.replyAsync(codec.AppendError(nil, s.enc, id, code, msg))
			return
		}
		c.replyOKAsync(codec.Reply{ID: id, Cmd: codec.CmdPublish, Offset: res.Offset, Epoch: res.Epoch, Replayed: res.Replayed})
	})
}

// publishErrorCode turns a broker's publish error into the error reply
// that says what happened to the publication (codec/README.md §6): never
// "failed" for one that may have been published.
func publishErrorCode(err error) (codec.ErrorCode, string) {
	switch {
	case errors.Is(err, broker.ErrOverloaded):
		return codec.CodeRateLimited, "overloaded, not published: retry later"
	case errors.Is(err, broker.ErrKeyReused):
		return codec.CodeKeyReused, ""
	case errors.Is(err, broker.ErrOutcomeUnknown):
		return codec.CodeOutcomeUnknown, ""
	case errors.Is(err, broker.ErrUnavailable):
		return codec.CodeInternal, "broker unavailable, not published: retry later"
	}
	return codec.CodeInternal, "not published: " + err.Error()
}

// leave drops c from channel in the hub and, where presence is on, in
// presence; where join_leave is on, it tells the channel's subscribers on
// every instance (a leave push). Called without c.mu: the hub never takes a
// connection lock under its own.
func (c *conn) leave(channel string) {
	c.srv.hub.Unsubscribe(channel, c)
	c.mu.Lock() // a resume in flight for channel is cancelled
	delete(c.recovering, channel)
	delete(c.resumedTop, channel)
	c.mu.Unlock()
	ns := c.srv.ns.For(channel)
	if ns.Presence {
		c.srv.presence.Leave(channel, c.sess.id)
	}
	if ns.JoinLeave {
		c.srv.broker.PublishEvent(channel, codec.KindLeave, c.sess.id, c.sess.identity.UserID)
	}
}

// leaveAll unsubscribes a closed connection from every channel.
func (s *session) leaveAll(c *conn) {
	for _, ch := range s.subs {
		c.leave(ch)
	}
	s.subs = nil
}
