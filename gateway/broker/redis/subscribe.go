package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/codec"
)

// subscriptions owns the pub/sub connections: the set of channels this
// instance wants, and for each connection a goroutine that reconciles what
// Redis has with what we want — subscribing in batches, after a reconnect
// too — and probes the connection when it is idle.
type subscriptions struct {
	b       *Broker
	mu      sync.Mutex              // serialises set and rebalance
	conns   []*pubsubConn           // fixed at init
	route   func(pubsub string) int // Pub/Sub channel → index in conns
	cluster *clusterState           // nil on a standalone Redis
}

func (s *subscriptions) init(b *Broker) {
	s.b = b
	n := b.cfg.PubSubShards
	s.route = func(pubsub string) int { return int(crc32.ChecksumIEEE([]byte(pubsub)) % uint32(n)) }
	if b.cluster {
		n = s.initCluster()
	}
	for i := range n {
		s.conns = append(s.conns, newPubsubConn(b, i))
	}
	for _, c := range s.conns { // only once conns is complete: run reads it
		b.wg.Add(1)
		go c.run()
	}
}

// set records whether channel is wanted and wakes its connection. A wanted
// channel is wanted on the connection its route names. One given up is
// given up on every connection: a topology change may have moved its route
// before rebalance moved the channel, and rebalance would then carry the
// stale want to the new connection, subscribed there for good. s.mu keeps
// set and rebalance apart.
func (s *subscriptions) set(channel string, want bool) {
	pubsub := s.b.names.pubsubChannel(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if want {
		s.conns[s.route(pubsub)].want(pubsub)
		return
	}
	for _, c := range s.conns {
		c.unwant(pubsub)
	}
}

// whenActive runs f once channel is subscribed on Redis, or calls fail
// after the broker's timeout. The wait is filed under s.mu, so a rebalance
// cannot move the channel between the route's lookup and the filing (the
// wait would be left on a connection that no longer wants it); f runs
// after, as it may call back into the broker.
func (s *subscriptions) whenActive(channel string, f func(), fail func(error)) {
	pubsub := s.b.names.pubsubChannel(channel)
	s.mu.Lock()
	active := s.conns[s.route(pubsub)].waitUnlessActive(pubsub, f, fail)
	s.mu.Unlock()
	if active {
		f()
	}
}

func (s *subscriptions) close() {
	for _, c := range s.conns {
		c.kickNow()
	}
}

// batchSize bounds the channels named in one SUBSCRIBE.
const batchSize = 256

// pubsubConn is one dedicated pub/sub connection and its wanted channels.
type pubsubConn struct {
	b     *Broker
	index int
	node  string // cluster master address ("" on a standalone Redis)
	probe string // this connection's probe channel
	kick  chan struct{}

	mu      sync.Mutex
	desired map[string]bool                 // Pub/Sub channels wanted on this connection
	active  map[string]bool                 // subscribed on the current Redis connection
	waiters map[string]map[*waiter]struct{} // run once the channel is active (a timed-out one leaves)
	// lapsed holds channels whose subscription was lost (a connection
	// failed, Redis dropped it, we unsubscribed it as it was wanted again):
	// publications may have been missed, so the sink resyncs them once they
	// are subscribed again.
	lapsed map[string]bool
	// unsubscribing holds channels diff took out of active whose
	// UNSUBSCRIBE Redis has not confirmed: until then they may still be
	// subscribed, so a lost connection or a hand-over (release) counts them
	// as subscribed.
	unsubscribing map[string]bool

	// probeSeq numbers this connection's probes; onMessage signals
	// probeSeen only for the one checkAlive waits for, so a late probe
	// cannot answer the next.
	probeSeq  atomic.Uint64
	probeSeen chan struct{}
	lastMsg   time.Time // guarded by mu: when the reader last had something from Redis
	lastHeld  time.Time // guarded by mu: when it last held a publication for a full hub
}

func newPubsubConn(b *Broker, index int) *pubsubConn {
	c := &pubsubConn{
		b: b, index: index, kick: make(chan struct{}, 1), probeSeen: make(chan struct{}, 1),
		desired: map[string]bool{}, active: map[string]bool{}, waiters: map[string]map[*waiter]struct{}{},
		lapsed: map[string]bool{}, unsubscribing: map[string]bool{},
	}
	c.node = b.subs.nodeOf(index)
	c.probe = b.subs.probeChannel(index, b.cfg.Prefix+":{probe}:c:"+b.cfg.Node+"."+strconv.Itoa(index))
	c.desired[c.probe] = true
	return c
}

func (c *pubsubConn) kickNow() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// maxReconnectBackoff bounds the wait between reconnect attempts: a
// restarted Redis is noticed (functions reloaded, channels resubscribed
// and resynced) within about this long of accepting connections again.
const maxReconnectBackoff = 500 * time.Millisecond

// run keeps one dedicated connection subscribed until the broker closes:
// connect, reconcile on every change, probe when idle, and start over (with
// backoff) when the connection fails or goes deaf.
func (c *pubsubConn) run() {
	defer c.b.wg.Done()
	backoff := 25 * time.Millisecond
	for c.b.ctx.Err() == nil {
		start := time.Now()
		err := c.session()
		if c.b.ctx.Err() != nil {
			return
		}
		c.b.stats.Reconnects.Add(1)
		c.b.setState("disconnected", err)
		if time.Since(start) > 10*maxReconnectBackoff {
			backoff = 25 * time.Millisecond // it was healthy: start over
		}
		// Jittered, so several instances do not reconnect in lock step.
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		select {
		case <-c.b.ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxReconnectBackoff)
	}
}

// session runs one dedicated connection until it fails.
func (c *pubsubConn) session() error {
	client := c.b.client
	if c.node != "" {
		n, ok := client.Nodes()[c.node]
		if !ok {
			return fmt.Errorf("cluster master %s not known", c.node)
		}
		client = n
	}
	dc, release := client.Dedicate()
	defer release()
	closed := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: c.onMessage, OnSubscription: c.onSubscription})
	c.connected()
	// A Redis that restarted has no functions: load them before anything
	// is subscribed or reported ready, so publishers (backends calling
	// FCALL too) work as soon as the gateway does.
	if err := c.b.loadLibraryOn(c.node, client); err != nil {
		return err
	}
	ticker := time.NewTicker(c.b.cfg.ProbeInterval)
	defer ticker.Stop()
	healthy := false
	defer func() {
		if healthy {
			c.b.healthy.Add(-1)
		}
	}()
	for {
		if err := c.reconcile(dc); err != nil {
			return err
		}
		if !healthy {
			healthy = true
			if int(c.b.healthy.Add(1)) == len(c.b.subs.conns) {
				c.b.setState("ready", nil)
			}
		}
		select {
		case <-c.b.ctx.Done():
			return nil
		case err := <-closed:
			return fmt.Errorf("pub/sub connection lost: %w", err)
		case <-c.kick:
		case <-ticker.C:
			if err := c.checkAlive(); err != nil {
				c.b.stats.DeafDetected.Add(1)
				return err
			}
		}
	}
}

// connected starts over on a new connection, which has no subscriptions:
// what the last one had is no longer active, and has lapsed if still
// wanted (lapsed only ever holds wanted channels: no reconcile would clear
// one that is not).
func (c *pubsubConn) connected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, had := range []map[string]bool{c.active, c.unsubscribing} {
		for ch := range had {
			if c.desired[ch] {
				c.lapsed[ch] = true
			}
		}
		clear(had)
	}
	c.lastMsg = time.Now()
}

// reconcile subscribes wanted channels and unsubscribes unwanted ones, in
// batches.
func (c *pubsubConn) reconcile(dc rueidis.DedicatedClient) error {
	sub, unsub := c.diff()
	for _, batch := range c.batches(sub) {
		if err := c.do(dc, true, batch); err != nil {
			return err
		}
		c.mark(batch, true)
	}
	for _, batch := range c.batches(unsub) {
		if err := c.do(dc, false, batch); err != nil {
			return err
		}
		c.mark(batch, false)
	}
	return nil
}

// batches splits channels into SUBSCRIBE batches; on a cluster one batch
// holds one slot's channels (SSUBSCRIBE refuses cross-slot batches).
func (c *pubsubConn) batches(chs []string) [][]string {
	groups := map[uint16][]string{}
	for _, ch := range chs {
		k := uint16(0)
		if c.node != "" {
			k = Slot(ch)
		}
		groups[k] = append(groups[k], ch)
	}
	var out [][]string
	for _, g := range groups {
		for len(g) > 0 {
			n := min(len(g), batchSize)
			out = append(out, g[:n])
			g = g[n:]
		}
	}
	return out
}

// diff lists the channels to subscribe and to unsubscribe. Those to
// unsubscribe stop being active now, not once Redis confirms: a channel
// wanted again before then must wait for its next SUBSCRIBE (whenActive),
// as publications may be missed in between.
func (c *pubsubConn) diff() (sub, unsub []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.desired {
		if !c.active[ch] {
			sub = append(sub, ch)
		}
	}
	for ch := range c.active {
		if !c.desired[ch] {
			unsub = append(unsub, ch)
			delete(c.active, ch)
			c.unsubscribing[ch] = true
		}
	}
	return sub, unsub
}

func (c *pubsubConn) mark(chs []string, active bool) {
	var ready []*waiter
	var resync []string
	c.mu.Lock()
	for _, ch := range chs {
		if active {
			c.active[ch] = true
			for w := range c.waiters[ch] {
				ready = append(ready, w)
			}
			delete(c.waiters, ch)
			if c.lapsed[ch] {
				delete(c.lapsed, ch)
				resync = append(resync, ch)
			}
			continue
		}
		delete(c.unsubscribing, ch)
		if c.desired[ch] {
			// Wanted again while its UNSUBSCRIBE was in flight: nothing
			// here received what was published since, until the next
			// SUBSCRIBE.
			c.lapsed[ch] = true
		} else {
			delete(c.lapsed, ch)
		}
	}
	c.mu.Unlock()
	for _, w := range ready {
		w.run()
	}
	// Subscribed again after a lapse: what was published meanwhile is
	// in history only.
	for _, ch := range resync {
		if ch != c.probe {
			c.b.sink.Resync(channelOf(ch))
		}
	}
}

func (c *pubsubConn) do(dc rueidis.DedicatedClient, subscribe bool, chs []string) error {
	ctx, cancel := context.WithTimeout(c.b.ctx, c.b.cfg.Timeout)
	defer cancel()
	var cmd rueidis.Completed
	switch {
	case subscribe && c.b.cluster:
		cmd = dc.B().Ssubscribe().Channel(chs...).Build()
	case subscribe:
		cmd = dc.B().Subscribe().Channel(chs...).Build()
	case c.b.cluster:
		cmd = dc.B().Sunsubscribe().Channel(chs...).Build()
	default:
		cmd = dc.B().Unsubscribe().Channel(chs...).Build()
	}
	if err := dc.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("redis subscribe %d channels: %w", len(chs), err)
	}
	return nil
}

// onMessage runs on rueidis's reader goroutine: decode and hand off without
// blocking (a slow hook would make Redis drop us for its output buffer).
func (c *pubsubConn) onMessage(m rueidis.PubSubMessage) {
	c.heard()
	if m.Channel == c.probe {
		if m.Message == strconv.FormatUint(c.probeSeq.Load(), 10) {
			select {
			case c.probeSeen <- struct{}{}:
			default:
			}
		}
		return
	}
	// The message string is immutable and ours: view it as bytes in place;
	// the publication's fields alias it.
	raw := unsafe.Slice(unsafe.StringData(m.Message), len(m.Message))
	p := new(codec.Publication)
	if err := codec.DecodePublication(raw, p); err != nil {
		c.b.stats.Undecodable.Add(1)
		return
	}
	c.b.stats.Received.Add(1)
	if !c.b.sink.Deliver(p) && !c.deliverLater(p) {
		c.b.stats.Dropped.Add(1)
		c.b.sink.Resync(string(p.Channel)) // nothing may follow p to reveal its loss
	}
}

// deliverLater retries a publication the hub refused (its queue budget is
// spent) until it is taken or Config.MaxBackpressure passes. Waiting stops
// reading this pub/sub connection, so Redis buffers what follows (its
// pubsub output buffer limit is 32 MB hard, 8 MB for 60 s by default): a
// burst is absorbed there instead of dropped. Past the bound the
// publication is dropped and the hub repairs or announces the gap, so a
// hub that never catches up cannot get this connection cut. While it
// holds a publication the reader is not idle (no probe is sent), and a
// probe already sent that queues behind it is late because of us, not
// because the connection is deaf (see checkAlive).
func (c *pubsubConn) deliverLater(p *codec.Publication) bool {
	c.b.stats.Backpressure.Add(1)
	deadline := time.Now().Add(c.b.cfg.MaxBackpressure)
	for pause := 100 * time.Microsecond; time.Now().Before(deadline) && c.b.ctx.Err() == nil; pause = min(2*pause, 10*time.Millisecond) {
		time.Sleep(pause)
		c.holding()
		if c.b.sink.Deliver(p) {
			return true
		}
	}
	return false
}

// onSubscription notices channels Redis dropped on its own (a cluster slot
// moved: "sunsubscribe" without our asking) so they are subscribed again.
// Such a channel is no longer active even if it is no longer wanted either:
// wanted again, it must be subscribed again. (Our own unsubscribes stopped
// being active in diff, so one still active was dropped by Redis.)
func (c *pubsubConn) onSubscription(s rueidis.PubSubSubscription) {
	if s.Kind != "sunsubscribe" && s.Kind != "unsubscribe" {
		return
	}
	c.mu.Lock()
	dropped, wanted := c.active[s.Channel], c.desired[s.Channel]
	delete(c.active, s.Channel)
	if wanted {
		c.lapsed[s.Channel] = true
	}
	c.mu.Unlock()
	if dropped || wanted {
		c.b.subs.moved(s.Channel)
	}
	if wanted {
		c.kickNow()
	}
}

var errDeaf = errors.New("pub/sub connection is deaf: probe not received")

// heard records that the connection's reader had a message from Redis.
func (c *pubsubConn) heard() {
	c.mu.Lock()
	c.lastMsg = time.Now()
	c.mu.Unlock()
}

// holding records that the reader is holding a publication for a full hub.
func (c *pubsubConn) holding() {
	c.mu.Lock()
	c.lastMsg = time.Now()
	c.lastHeld = c.lastMsg
	c.mu.Unlock()
}

func (c *pubsubConn) heardSince(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.lastMsg.Before(t)
}

func (c *pubsubConn) heldSince(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.lastHeld.Before(t)
}

// checkAlive publishes to the connection's probe channel when nothing
// arrived for a probe interval, and fails if it does not come back within
// the probe timeout — unless the reader held a publication for a full hub
// meanwhile: the probe is then queued behind what we have not read yet,
// and is probed again at the next tick instead.
func (c *pubsubConn) checkAlive() error {
	if c.heardSince(time.Now().Add(-c.b.cfg.ProbeInterval)) {
		return nil
	}
	seq := strconv.FormatUint(c.probeSeq.Add(1), 10)
	select { // forget the last probe, come back after its timeout
	case <-c.probeSeen:
	default:
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, c.b.cfg.ProbeTimeout)
	defer cancel()
	cmd := c.b.client.B().Publish().Channel(c.probe).Message(seq).Build()
	if c.b.cluster {
		cmd = c.b.client.B().Spublish().Channel(c.probe).Message(seq).Build()
	}
	sent := time.Now()
	if err := c.b.client.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("probe publish: %w", err)
	}
	select {
	case <-c.probeSeen:
		return nil
	case <-ctx.Done():
		if c.heldSince(sent) {
			return nil
		}
		return errDeaf
	}
}
