package gateway

import (
	"slices"

	"github.com/wsgate/wsgate/gateway/auth"
)

// maySubscribe applies, in order: private channels ("user#42",
// "dialog#42,43": only the listed users), the namespace's subscribe rule,
// and a subscription token (verified by a, when configured) that grants
// this channel to this user.
func maySubscribe(a *auth.Authenticator, ns *Namespace, id Identity, channel string, token []byte) bool {
	if owners, private := userChannelOwners(channel); private {
		return id.UserID != "" && slices.Contains(owners, id.UserID)
	}
	if permitted(ns.Subscribe, id, channel) {
		return true
	}
	if len(token) == 0 || a == nil || ns.Subscribe == RuleServer {
		return false
	}
	return a.VerifySubscription(string(token), channel, id.UserID) == nil
}

// mayPublish applies private channels and the namespace's publish rule.
func mayPublish(ns *Namespace, id Identity, channel string) bool {
	if owners, private := userChannelOwners(channel); private {
		return id.UserID != "" && slices.Contains(owners, id.UserID)
	}
	return permitted(ns.Publish, id, channel)
}
