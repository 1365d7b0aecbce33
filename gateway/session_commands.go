package gateway

import (
	"errors"
	"slices"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/auth"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/presence"
)

// The client commands, one method each (subscribe's resume is in
// session_resume.go), and the server API's actions on a session.

// checkChannel validates a channel name, replying with an error if bad.
func (s *session) checkChannel(cmd *codec.Command) bool {
	if !codec.ValidChannel(cmd.Channel, s.srv.cfg.MaxChannelBytes) {
		s.replyError(cmd.ID, codec.CodeBadChannel, "invalid channel name")
		return false
	}
	return true
}

// subscribe adds a subscription: permission, presence, the hub, a join
// event, then the reply with the channel's position — or, with a resume
// position, the missed publications first (session_resume.go).
func (s *session) subscribe(cmd *codec.Command) {
	if !s.checkChannel(cmd) {
		return
	}
	if s.sub != nil && slices.Contains(s.sub.subs, string(cmd.Channel)) {
		s.replyError(cmd.ID, codec.CodeAlreadySubscribed, "already subscribed")
		return
	}
	if s.sub != nil && len(s.sub.subs) >= s.srv.cfg.MaxChannelsPerConn {
		s.replyError(cmd.ID, codec.CodeTooManyChannels, "too many channels")
		return
	}
	ch := string(cmd.Channel) // own copy: cmd aliases the read buffer
	ns := s.srv.ns.For(ch)
	if !maySubscribe(s.srv.cfg.Auth, ns, s.identity(), ch, cmd.Token) {
		s.replyError(cmd.ID, codec.CodePermission, "not allowed to subscribe to "+ch)
		return
	}
	u := s.subscribed()
	if ns.Presence {
		s.srv.presence.Join(ch, presence.Member{Client: u.id, User: s.userID()})
	}
	resume := cmd.HasOffset && ns.Recovery
	var rec *recovery // this subscribe's resume; an unsubscribe cancels it
	if resume {
		rec = s.startRecovery(ch, cmd.ID)
	}
	id, since, epoch := cmd.ID, cmd.Offset, string(cmd.Epoch)
	noRecovery := cmd.HasOffset && !ns.Recovery // asked to resume where it is off
	subscribed := func(pos broker.Position) codec.Reply {
		r := codec.Reply{ID: id, Cmd: codec.CmdSubscribe, Offset: pos.Offset, Epoch: pos.Epoch}
		if noRecovery {
			r.Resumed, r.Reason = true, "recovery is off for this namespace"
		}
		return r
	}
	// A fresh subscribe to a channel this instance already follows is
	// answered with the hub's position, queued before any publication
	// after it (see hub.SubscribeAt): no broker round trip.
	var known func(broker.Position)
	if !resume {
		known = func(pos broker.Position) { s.replyOK(subscribed(pos)) }
	}
	answered, err := s.srv.hub.SubscribeAt(ch, s, known)
	if err != nil {
		s.dropRecovery(ch, rec) // the hub never subscribed: nothing held
		if ns.Presence {
			s.srv.presence.Leave(ch, u.id)
		}
		s.replyError(cmd.ID, codec.CodeInternal, err.Error())
		return
	}
	u.subs = append(u.subs, ch)
	if ns.JoinLeave {
		// On the worker, like the leave in s.leave: one connection's join
		// and leave of a channel go to the broker in that order.
		s.srv.broker.PublishEvent(ch, codec.KindJoin, u.id, s.userID())
	}
	if answered {
		return
	}
	if !resume {
		// Live frames are held from here until the reply: a publication
		// after the position the broker is about to read must not reach
		// the client before the reply that tells it where to start.
		// Earlier ones are at or below that position.
		rec = s.startRecovery(ch, id)
	}
	s.subscribeViaBroker(ch, rec, resume, since, epoch, subscribed)
}

// subscribeViaBroker answers a subscribe the hub could not: with the
// channel's position from the broker, or, for a resume, with the history
// read after it — then the live frames held back meanwhile that come
// after that. 111 means nothing was done, so a subscribe the broker fails
// is undone before it is answered: the client may send it again.
func (s *session) subscribeViaBroker(ch string, rec *recovery, resume bool, since uint64, epoch string, subscribed func(broker.Position) codec.Reply) {
	fail := func(err error) { s.t.runOnWorker(func() { s.failSubscribe(ch, rec, err) }) }
	s.srv.broker.Position(ch, func(pos broker.Position, err error) {
		switch {
		case err != nil:
			fail(err)
		case !resume:
			s.finishSubscribe(ch, rec, pos, subscribed(pos))
		default:
			// The subscription is live (held back): read what was missed.
			s.srv.broker.History(ch, broker.HistoryQuery{Since: since}, func(res broker.HistoryResult, err error) {
				if err != nil {
					fail(err)
					return
				}
				s.finishRecovery(ch, rec, since, epoch, res)
			})
		}
	})
}

// failSubscribe answers with 111 a subscribe the broker could not
// complete, after undoing it unless the client unsubscribed or subscribed
// ch again meanwhile (then rec is no longer ch's). Frames it held back
// are dropped with it. Worker only.
//
// A subscribe the server API ended meanwhile was answered then (see
// leave): nothing more is sent. With Redis that is the usual end of such a
// subscribe: the broker forgets the position read of a channel no one
// wants any more.
func (s *session) failSubscribe(ch string, rec *recovery, err error) {
	u := s.sub
	u.mu.Lock()
	answered := rec.answered
	u.mu.Unlock()
	if answered {
		return
	}
	if i := slices.Index(u.subs, ch); s.dropRecovery(ch, rec) && i >= 0 {
		s.leave(ch, nil)
		u.subs = slices.Delete(u.subs, i, i+1)
	}
	s.replyAsync(codec.AppendError(nil, s.enc, rec.id, codec.CodeInternal, err.Error()))
}

// unsubscribe ends a subscription at the client's request.
func (s *session) unsubscribe(cmd *codec.Command) {
	i := -1
	if s.sub != nil {
		i = slices.Index(s.sub.subs, string(cmd.Channel))
	}
	if i < 0 {
		s.replyError(cmd.ID, codec.CodeNotSubscribed, "not subscribed")
		return
	}
	s.leave(s.sub.subs[i], nil)
	s.sub.subs = slices.Delete(s.sub.subs, i, i+1)
	s.replyOK(codec.Reply{ID: cmd.ID, Cmd: codec.CmdUnsubscribe})
}

// dropSubscription unsubscribes the session from channel on the server's
// behalf (the API; worker only) and tells the client with an unsubscribe
// push, or, if its subscribe is still to be answered, with that answer
// (error 108).
func (s *session) dropSubscription(channel string) {
	if s.sub == nil {
		return
	}
	if i := slices.Index(s.sub.subs, channel); i >= 0 {
		s.leave(channel, s.frame(codec.AppendUnsubscribe(nil, s.enc, channel)))
		s.sub.subs = slices.Delete(s.sub.subs, i, i+1)
	}
}

// maxHistoryLimit bounds one history reply.
const maxHistoryLimit = 1000

func (s *session) history(cmd *codec.Command) {
	if !s.checkChannel(cmd) {
		return
	}
	ch := string(cmd.Channel)
	ns := s.srv.ns.For(ch)
	switch {
	case ns.HistorySize <= 0:
		s.replyError(cmd.ID, codec.CodeNotAvailable, "history is off for this namespace")
		return
	case !maySubscribe(s.srv.cfg.Auth, ns, s.identity(), ch, cmd.Token):
		s.replyError(cmd.ID, codec.CodePermission, "not allowed to read "+ch)
		return
	}
	id, epoch, hasEpoch := cmd.ID, string(cmd.Epoch), cmd.HasEpoch
	q := broker.HistoryQuery{Since: cmd.Offset, Limit: cmd.Limit, Reverse: cmd.Reverse}
	if q.Limit <= 0 || q.Limit > maxHistoryLimit {
		q.Limit = maxHistoryLimit
	}
	fromOffset := cmd.HasOffset && !cmd.Reverse
	s.srv.broker.History(ch, q, func(res broker.HistoryResult, err error) {
		if err != nil {
			s.replyAsync(codec.AppendError(nil, s.enc, id, codec.CodeInternal, err.Error()))
			return
		}
		if msg := unservable(res, q.Since, fromOffset, epoch, hasEpoch); msg != "" {
			s.replyAsync(codec.AppendError(nil, s.enc, id, codec.CodeUnrecoverable, msg))
			return
		}
		pubs := make([]codec.HistoryPublication, len(res.Publications))
		for i, p := range res.Publications {
			pubs[i] = codec.HistoryPublication{Offset: p.Offset, Data: p.Data}
		}
		s.replyOKAsync(codec.Reply{
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

func (s *session) publish(cmd *codec.Command) {
	if !s.checkChannel(cmd) {
		return
	}
	if ch := string(cmd.Channel); !mayPublish(s.srv.ns.For(ch), s.identity(), ch) {
		s.replyError(cmd.ID, codec.CodePermission, "not allowed to publish to "+ch)
		return
	}
	id := cmd.ID
	if !s.srv.hub.AdmitPublish() {
		// Fan-out is behind: publishing more would risk drops. Nothing is
		// published; the client retries later.
		s.replyError(id, codec.CodeRateLimited, "overloaded, not published: retry later")
		return
	}
	data := append([]byte(nil), cmd.Data...) // own copy: it outlives the read buffer
	opts := broker.PublishOptions{IdempotencyKey: string(cmd.IdempotencyKey)}
	s.srv.broker.Publish(string(cmd.Channel), data, opts, func(res broker.PublishResult, err error) {
		if err != nil {
			code, msg := publishErrorCode(err)
			s.replyAsync(codec.AppendError(nil, s.enc, id, code, msg))
			return
		}
		s.replyOKAsync(codec.Reply{ID: id, Cmd: codec.CmdPublish, Offset: res.Offset, Epoch: res.Epoch, Replayed: res.Replayed})
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

// presence answers presence and presence_stats for a channel the
// connection may subscribe to, in a namespace with presence on.
func (s *session) presence(cmd *codec.Command) {
	if !s.checkChannel(cmd) {
		return
	}
	ch := string(cmd.Channel)
	ns := s.srv.ns.For(ch)
	switch {
	case !ns.Presence:
		s.replyError(cmd.ID, codec.CodeNotAvailable, "presence is off for this namespace")
		return
	case !maySubscribe(s.srv.cfg.Auth, ns, s.identity(), ch, cmd.Token):
		s.replyError(cmd.ID, codec.CodePermission, "not allowed to read "+ch)
		return
	}
	id, enc := cmd.ID, s.enc
	if cmd.Cmd == codec.CmdPresenceStats {
		s.srv.presence.Stats(ch, func(st presence.Stats, err error) {
			if err != nil {
				s.replyAsync(codec.AppendError(nil, enc, id, codec.CodeInternal, err.Error()))
				return
			}
			s.replyOKAsync(codec.Reply{ID: id, Cmd: codec.CmdPresenceStats, NumClients: uint64(st.Clients), NumUsers: uint64(st.Users)})
		})
		return
	}
	s.srv.presence.Members(ch, func(ms []presence.Member, err error) {
		if err != nil {
			s.replyAsync(codec.AppendError(nil, enc, id, codec.CodeInternal, err.Error()))
			return
		}
		clients := make([]codec.ClientInfo, len(ms))
		for i, m := range ms {
			clients[i] = codec.ClientInfo{Client: m.Client, User: m.User}
		}
		s.replyOKAsync(codec.Reply{ID: id, Cmd: codec.CmdPresence, Clients: clients})
	})
}

// refresh replaces the connection's token: same user, later expiry.
func (s *session) refresh(cmd *codec.Command) {
	a := s.srv.cfg.Auth
	if a == nil {
		s.replyError(cmd.ID, codec.CodeNotAvailable, "no authentication configured")
		return
	}
	id, err := a.Verify(string(cmd.Token))
	if err != nil {
		var aerr *auth.Error
		msg := "invalid token"
		if errors.As(err, &aerr) {
			msg = aerr.Code
		}
		s.replyError(cmd.ID, codec.CodeUnauthorized, msg)
		return
	}
	if id.UserID != s.userID() {
		s.replyError(cmd.ID, codec.CodePermission, "a refresh token must be for the same user")
		return
	}
	// Same user: only the grant and the expiry change (the server's
	// index by user stays right).
	next := identityFromAuth(id)
	if s.ident == nil {
		s.ident = &next
	} else {
		s.ident.Channels, s.ident.ExpiresAt = next.Channels, next.ExpiresAt
	}
	s.asked = false
	s.replyOK(codec.Reply{ID: cmd.ID, Cmd: codec.CmdRefresh})
	s.t.replan() // re-plan the timer (heartbeat, expiry)
}
