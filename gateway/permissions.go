package gateway

import (
	"slices"
)

// maySubscribe applies, in order: private channels ("user#42",
// "dialog#42,43": only the listed users), the namespace's subscribe rule,
// and a subscription token that grants this channel to this user.
func (c *conn) maySubscribe(ns *Namespace, channel string, token []byte) bool {
	id := c.sess.identity
	if owners, private := userChannelOwners(channel); private {
		return id.UserID != "" && slices.Contains(owners, id.UserID)
	}
	if permitted(ns.Subscribe, id, channel) {
		return true
	}
	if len(token) == 0 || c.srv.cfg.Auth == nil || ns.Subscribe == RuleServer {
		return false
	}
	return c.srv.cfg.Auth.VerifySubscription(string(token), channel, id.UserID) == nil
}

// mayPublish applies private channels and the namespace's publish rule.
func (c *conn) mayPublish(ns *Namespace, channel string) bool {
	id := c.sess.identity
	if owners, private := userChannelOwners(channel); private {
		return id.UserID != "" && slices.Contains(owners, id.UserID)
	}
	return permitted(ns.Publish, id, channel)
}
