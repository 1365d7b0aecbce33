package redis

import (
	"errors"
	"sync"
	"time"
)

// What a pub/sub connection wants: the channels it is to keep subscribed,
// the subscribes waiting for one to be, and their hand-over to another
// connection when a cluster slot moves (rebalance).

func (c *pubsubConn) want(pubsub string) {
	c.mu.Lock()
	c.desired[pubsub] = true
	c.mu.Unlock()
	c.kickNow()
}

// unwant stops wanting pubsub here; the subscribes waiting for it are
// answered by their timers.
func (c *pubsubConn) unwant(pubsub string) {
	c.mu.Lock()
	wanted := c.unwantLocked(pubsub)
	c.mu.Unlock()
	if wanted {
		c.kickNow()
	}
}

func (c *pubsubConn) unwantLocked(pubsub string) (wanted bool) {
	wanted = c.desired[pubsub]
	delete(c.desired, pubsub)
	delete(c.waiters, pubsub)
	delete(c.lapsed, pubsub) // no one here is left to resync
	return wanted
}

// handover is what a channel's old connection passes to its new one
// (rebalance).
type handover struct {
	// lapsed: it was subscribed on the old connection or had lapsed there,
	// so publications may be missed until the new one subscribes it.
	lapsed bool
	// waiters are the subscribes waiting for it whose timers were stopped
	// in time; the new connection answers them.
	waiters []*waiter
}

// release stops wanting pubsub here, as another connection takes it over.
func (c *pubsubConn) release(pubsub string) handover {
	c.mu.Lock()
	h := handover{lapsed: c.active[pubsub] || c.lapsed[pubsub] || c.unsubscribing[pubsub]}
	for w := range c.waiters[pubsub] {
		if w.timer.Stop() { // else it is failing already
			h.waiters = append(h.waiters, w)
		}
	}
	c.unwantLocked(pubsub)
	c.mu.Unlock()
	c.kickNow()
	return h
}

// adopt wants pubsub here, taken over from another connection (release).
// Its waiters keep what was left of their timeout.
func (c *pubsubConn) adopt(pubsub string, h handover) {
	c.mu.Lock()
	c.desired[pubsub] = true
	if h.lapsed {
		c.lapsed[pubsub] = true
	}
	active := c.active[pubsub]
	if !active {
		for _, w := range h.waiters {
			c.waitLocked(pubsub, w)
		}
	}
	c.mu.Unlock()
	if active {
		for _, w := range h.waiters {
			w.run()
		}
	}
	c.kickNow()
}

// wanted lists the Pub/Sub channels wanted on this connection.
func (c *pubsubConn) wanted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.desired))
	for ch := range c.desired {
		out = append(out, ch)
	}
	return out
}

// waitUnlessActive reports whether pubsub is subscribed on Redis, and if
// it is not yet, files a wait that runs f once it is, so a subscribe reply
// is only sent when publications can no longer be missed, or calls fail
// after the broker's timeout.
func (c *pubsubConn) waitUnlessActive(pubsub string, f func(), fail func(error)) (active bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active[pubsub] {
		return true
	}
	c.waitLocked(pubsub, &waiter{f: f, fail: fail, deadline: time.Now().Add(c.b.cfg.Timeout)})
	return false
}

// waitLocked files w under pubsub and arms its timer for what is left of
// its timeout. The timer is set under c.mu, before mark (which takes c.mu)
// can run w.
func (c *pubsubConn) waitLocked(pubsub string, w *waiter) {
	w.timer = time.AfterFunc(time.Until(w.deadline), func() {
		// Forget w before failing it: its f holds a session, for as long
		// as the channel stays unsubscribed (all of an outage).
		c.forget(pubsub, w)
		w.once.Do(func() { w.fail(errNotConfirmed) })
	})
	if c.waiters[pubsub] == nil {
		c.waiters[pubsub] = map[*waiter]struct{}{}
	}
	c.waiters[pubsub][w] = struct{}{}
}

// forget removes a waiter that timed out.
func (c *pubsubConn) forget(pubsub string, w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiters[pubsub], w)
	if len(c.waiters[pubsub]) == 0 {
		delete(c.waiters, pubsub)
	}
}

var errNotConfirmed = errors.New("redis: subscription not confirmed in time")

// waiter is one whenActive call waiting for its channel: run (once the
// channel is active) or its timer (which fails it), whichever comes first.
type waiter struct {
	once     sync.Once
	timer    *time.Timer // guarded by the mu of the connection holding w
	f        func()
	fail     func(error)
	deadline time.Time
}

func (w *waiter) run() {
	w.once.Do(func() {
		w.timer.Stop()
		w.f()
	})
}
