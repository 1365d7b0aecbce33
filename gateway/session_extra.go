package gateway

import (
	"errors"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/auth"
	"github.com/wsgate/wsgate/gateway/presence"
)

// presence answers presence and presence_stats for a channel the
// connection may subscribe to, in a namespace with presence on.
func (c *conn) presence(cmd *codec.Command) {
	if !c.checkChannel(cmd) {
		return
	}
	ch := string(cmd.Channel)
	ns := c.srv.ns.For(ch)
	switch {
	case !ns.Presence:
		c.replyError(cmd.ID, codec.CodeNotAvailable, "presence is off for this namespace")
		return
	case !c.maySubscribe(ns, ch, cmd.Token):
		c.replyError(cmd.ID, codec.CodePermission, "not allowed to read "+ch)
		return
	}
	id, enc := cmd.ID, c.sess.enc
	if cmd.Cmd == codec.CmdPresenceStats {
		c.srv.presence.Stats(ch, func(st presence.Stats, err error) {
			if err != nil {
				c.replyAsync(codec.AppendError(nil, enc, id, codec.CodeInternal, err.Error()))
				return
			}
			c.replyOKAsync(codec.Reply{ID: id, Cmd: codec.CmdPresenceStats, NumClients: uint64(st.Clients), NumUsers: uint64(st.Users)})
		})
		return
	}
	c.srv.presence.Members(ch, func(ms []presence.Member, err error) {
		if err != nil {
			c.replyAsync(codec.AppendError(nil, enc, id, codec.CodeInternal, err.Error()))
			return
		}
		clients := make([]codec.ClientInfo, len(ms))
		for i, m := range ms {
			clients[i] = codec.ClientInfo{Client: m.Client, User: m.User}
		}
		c.replyOKAsync(codec.Reply{ID: id, Cmd: codec.CmdPresence, Clients: clients})
	})
}

// refresh replaces the connection's token: same user, later expiry.
func (c *conn) refresh(cmd *codec.Command) {
	a := c.srv.cfg.Auth
	if a == nil {
		c.replyError(cmd.ID, codec.CodeNotAvailable, "no authentication configured")
		return
	}
	id, err := a.Verify(string(cmd.Token))
	if err != nil {
		var aerr *auth.Error
		msg := "invalid token"
		if errors.As(err, &aerr) {
			msg = aerr.Code
		}
		c.replyError(cmd.ID, codec.CodeUnauthorized, msg)
		return
	}
	s := c.sess
	if id.UserID != s.identity.UserID {
		c.replyError(cmd.ID, codec.CodePermission, "a refresh token must be for the same user")
		return
	}
	c.mu.Lock() // the server API reads identities under mu
	s.identity = identityFromAuth(id)
	c.mu.Unlock()
	s.asked = false
	c.replyOK(codec.Reply{ID: cmd.ID, Cmd: codec.CmdRefresh})
	c.desc.SetTimer(c.srv.at(c.srv.now())) // re-plan the timer (heartbeat, expiry)
}

// identityFromAuth converts an auth identity to the gateway's.
func identityFromAuth(id auth.Identity) Identity {
	return Identity{UserID: id.UserID, Channels: id.Channels, ExpiresAt: id.ExpiresAt}
}

// checkExpiryLocked asks a connection whose token expired to refresh
// (a push of type "refresh") and closes it with 4004 when RefreshGrace
// passes without one. It returns the next time it needs to look (zero:
// never) and false when it closed the connection.
func (c *conn) checkExpiryLocked(now time.Time) (time.Time, bool) {
	s := c.sess
	if s == nil || s.identity.ExpiresAt.IsZero() {
		return time.Time{}, true
	}
	exp := s.identity.ExpiresAt
	switch {
	case now.Before(exp):
		return exp, true
	case now.Before(exp.Add(c.srv.cfg.RefreshGrace)):
		if !s.asked {
			s.asked = true
			c.queueLocked(c.frame(codec.AppendRefresh(nil, s.enc)))
			c.flushLocked(true)
		}
		return exp.Add(c.srv.cfg.RefreshGrace), true
	}
	c.srv.metrics.TokenExpired.Add(1)
	c.startCloseLocked(CloseTokenExpired, "token expired", false)
	c.flushLocked(true)
	return time.Time{}, false
}
