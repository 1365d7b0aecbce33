// Package hub maps channels to their local subscribers and fans
// publications out to them. Channels are spread over shards by hash; each
// shard has a bounded queue of publications and one write worker, so one
// channel's publications are delivered in broker order while different
// shards deliver in parallel.
//
// A publication is framed once per encoding (MessagePack, JSON) and every
// subscriber gets a reference to the same bytes. Consecutive publications
// of a channel are fanned out together as a run, and queued frames are
// flushed once per subscriber per round (worker.go), so a burst to one
// socket leaves in one write.
//
// Join / leave events (codec.KindJoin, codec.KindLeave) travel the same
// queue, so they keep their place among a channel's publications, but
// they have no offset: they bypass duplicate dropping and gap detection,
// are framed as join / leave pushes and are never held back by a fill.
package hub

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/holdback"
)

// Subscriber is one local connection as the hub sees it.
type Subscriber interface {
	// Encoding is the subscriber's wire format.
	Encoding() codec.Encoding
	// Enqueue queues a run of publications of one channel, in order, with
	// their shared, immutable frames (frames[i] is pubs[i]'s, in the
	// subscriber's encoding). It must not block or write, nor keep either
	// slice; it returns true when the caller must call Flush (the queue was
	// empty, so nobody else will). The publications are passed for
	// subscribers that hold live ones back while they recover history
	// (publications are immutable: their fields may be kept).
	Enqueue(pubs []*codec.Publication, frames [][]byte) (flush bool)
	// Flush writes what the socket takes now, without blocking.
	Flush()
}

// Deflater is implemented by subscribers whose connection may have
// negotiated permessage-deflate; DeflateWindow reports what it agreed
// (deflate.NoWindow: nothing; else the client's window, 8–15). The hub
// asks once, at Subscribe, and such a subscriber of a channel that allows
// compression (Config.Compress) gets the compressed frame of every
// publication that fits its window (deflate.Window.Fits), the plain frame
// of the others.
type Deflater interface {
	DeflateWindow() deflate.Window
}

// Config sizes a Hub.
type Config struct {
	Shards int // default 64
	// QueueBytes bounds the publications waiting for fan-out, all shards
	// together (default DefaultQueueBytes): a burst on one hot channel may
	// use all of it. Past it Deliver refuses (a gap, repaired from history
	// or announced); past half of it Congested says so, and local
	// publishers are refused before anything is published.
	QueueBytes int64
	BatchSize  int // publications delivered before a flush (default 64)
	// Compress says whether a channel's publications may go out
	// compressed to subscribers that negotiated permessage-deflate (asked
	// once, when the channel gets its first local subscriber); nil: none
	// may. Frames whose payload is shorter than CompressMinBytes go out
	// plain.
	Compress         func(channel string) bool
	CompressMinBytes int
	// FlushAll, when set, flushes a list of subscribers at once (the
	// gateway sends to all their sockets with one system call); nil: one
	// Flush call each. It must not keep the slice.
	FlushAll func(subs []Subscriber)
}

// DefaultQueueBytes is the default fan-out queue budget: at ~200 bytes per
// small publication, some 300,000 of them.
const DefaultQueueBytes = 64 << 20

func (c Config) withDefaults() Config {
	if c.Shards <= 0 {
		c.Shards = 64
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	return c
}

// Stats are the hub's counters. Each field's tags name its metric and HELP
// text (gateway/metrics.go exports every tagged field).
type Stats struct {
	Delivered  atomic.Int64 `metric:"wsgate_hub_delivered_total" help:"Publication frames queued to subscribers' connections."`
	Dropped    atomic.Int64 `metric:"wsgate_hub_dropped_total" help:"Publications refused because the hub's queue budget was spent (repaired as a gap when history has them)."`
	Queued     atomic.Int64 `metric:"wsgate_hub_queued_bytes" help:"Bytes of publications waiting for fan-out."`
	Refused    atomic.Int64 `metric:"wsgate_hub_publish_refused_total" help:"Local publishes refused while the hub was congested."`
	Channels   atomic.Int64 `metric:"wsgate_hub_channels" help:"Channels with at least one subscriber on this instance."`
	Gaps       atomic.Int64 `metric:"wsgate_hub_gaps_total" help:"Offset jumps seen on live delivery."`
	GapsFilled atomic.Int64 `metric:"wsgate_hub_gaps_filled_total" help:"Publications recovered from history to fill gaps."`
	GapsLost   atomic.Int64 `metric:"wsgate_hub_gaps_lost_total" help:"Publications of gaps that history could no longer provide."`
	GapNotices atomic.Int64 `metric:"wsgate_hub_gap_notices_total" help:"Gap pushes queued to subscribers for publications they will not get."`
	// Compressed counts frames compressed for permessage-deflate: once per
	// publication per encoding that has compressing subscribers, however
	// many they are.
	Compressed atomic.Int64 `metric:"wsgate_hub_compressed_frames_total" help:"Frames compressed for permessage-deflate subscribers (once per publication and encoding, shared by all of them)."`
	Duplicates atomic.Int64 `metric:"wsgate_hub_duplicates_total" help:"Publications dropped at or below the last offset already delivered."`
	Events     atomic.Int64 `metric:"wsgate_hub_events_total" help:"Join and leave frames queued to subscribers."`
	// EpochChanges counts channels whose epoch changed under live
	// subscribers (history lost: a broker restarted without persistence).
	EpochChanges atomic.Int64 `metric:"wsgate_hub_epoch_changes_total" help:"Channels whose epoch changed under live subscribers (history lost, e.g. a broker restarted without persistence)."`
	// Resyncs counts channels read back from history because the broker
	// may have missed publications (its subscription lapsed, or it gave up
	// on one the hub refused; retries included), and ResyncFilled the
	// publications that delivered.
	Resyncs      atomic.Int64 `metric:"wsgate_hub_resyncs_total" help:"Channels read back from history because the broker may have missed publications (a lapsed subscription, a publication it gave up on; retries included)."`
	ResyncFilled atomic.Int64 `metric:"wsgate_hub_resync_filled_total" help:"Publications delivered by resyncs."`
	// ResyncRetries counts resyncs scheduled again because their history
	// read failed.
	ResyncRetries atomic.Int64 `metric:"wsgate_hub_resync_retries_total" help:"Resyncs tried again, after a backoff, because their history read failed."`
	// PositionsKnown counts subscribes answered with the position the hub
	// already had (SubscribeAt), without asking the broker.
	PositionsKnown atomic.Int64 `metric:"wsgate_hub_positions_known_total" help:"Subscribes answered with the channel position this instance already had, without a broker round trip."`
}

// Hub is the channel → subscribers table and its write workers.
type Hub struct {
	cfg    Config
	seed   maphash.Seed
	broker broker.Broker
	shards []*shard
	stats  Stats
	wg     sync.WaitGroup
}

type shard struct {
	hub *Hub

	mu       sync.Mutex // guards channels and their state
	channels map[string]*chanState

	queue  queue
	worker *worker // used only by the shard's goroutine (run and control work)
}

// chanState is one channel's local subscribers and its delivery position:
// the last offset delivered in its epoch, used to drop duplicates and to
// notice gaps and epoch changes. It is created fresh when the first local
// subscriber arrives; until something is delivered, the positions its
// subscribers were told (Observe) stand in for it to notice gaps and epoch
// changes, but drop nothing (giveWay).
type chanState struct {
	subs     map[Subscriber]format // read once, at Subscribe
	compress bool                  // Config.Compress allows compressed frames
	pos      holdback.Position     // the last offset delivered, in its epoch
	observed bool                  // pos comes from Observe, nothing delivered yet: it drops nothing
	// While a repair reads history (a gap fill or a resync), later
	// publications are held back, in order.
	held   holdback.Buffer[*codec.Publication]
	fillID uint64 // the repair in flight; a given-up one's answer is ignored
	// resync: the broker asked for a resync while a fill was running; it
	// runs when the fill ends.
	resync bool
	// retry: a resync whose history read failed is tried again after
	// backoff, doubled while reads keep failing (retryResyncLocked).
	retry   *time.Timer
	backoff time.Duration
}

// maxHeld bounds the publications held back while one repair runs.
const maxHeld = 4096

// ErrAlreadySubscribed is returned by Subscribe on a duplicate.
var ErrAlreadySubscribed = errors.New("hub: already subscribed")

// New creates a hub that declares channel interest to b. Call Run to start
// the write workers and Close to stop them.
func New(cfg Config, b broker.Broker) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{cfg: cfg, seed: maphash.MakeSeed(), broker: b}
	for range cfg.Shards {
		s := &shard{hub: h, channels: map[string]*chanState{}}
		s.worker = &worker{shard: s}
		s.queue.init()
		h.shards = append(h.shards, s)
	}
	return h
}

// Start launches one write worker per shard.
func (h *Hub) Start() {
	for _, s := range h.shards {
		h.wg.Add(1)
		go s.run()
	}
}

// Close stops the workers after they deliver what is queued, then the
// resync retries still waiting (the workers may arm one until they stop;
// one that fires meanwhile finds its queue closed).
func (h *Hub) Close() {
	for _, s := range h.shards {
		s.queue.close()
	}
	h.wg.Wait()
	for _, s := range h.shards {
		s.stopRetries()
	}
}

// stopRetries stops the shard's resync retries that are still waiting.
func (s *shard) stopRetries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		if ch.retry != nil {
			ch.retry.Stop()
			ch.retry = nil
		}
	}
}

// Stats returns the hub's live counters.
func (h *Hub) Stats() *Stats { return &h.stats }

func (h *Hub) shard(channel string) *shard {
	return h.shards[maphash.String(h.seed, channel)%uint64(len(h.shards))]
}

// shardBytes is shard for a channel name held as bytes (same hash).
func (h *Hub) shardBytes(channel []byte) *shard {
	return h.shards[maphash.Bytes(h.seed, channel)%uint64(len(h.shards))]
}

// Subscribe adds sub to channel; the first local subscriber subscribes the
// instance at the broker (under the shard lock, so broker calls for one
// channel stay in order).
func (h *Hub) Subscribe(channel string, sub Subscriber) error {
	_, err := h.SubscribeAt(channel, sub, nil)
	return err
}

// SubscribeAt is Subscribe for a subscriber that needs the channel's
// position. When the hub knows it — the last offset delivered on this
// instance, or the lowest one a subscriber was told, with no repair
// running — it calls at with it under the shard lock, before any later
// publication can reach sub, and reports true: sub gets every publication
// after that position, delivered or repaired here, so the caller needs no
// broker round trip (a reconnect storm on a hot channel costs the broker
// nothing). at may queue a reply to sub: the shard lock comes before a
// connection's lock. It reports false when the position is unknown (a
// channel new on this instance, or being repaired), or when at is nil.
func (h *Hub) SubscribeAt(channel string, sub Subscriber, at func(broker.Position)) (known bool, err error) {
	s := h.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := h.joinLocked(s, channel, sub)
	if err != nil || at == nil || ch.pos.Epoch == "" || ch.held.Holding() || ch.resync {
		return false, err
	}
	h.stats.PositionsKnown.Add(1)
	at(broker.Position{Epoch: ch.pos.Epoch, Offset: ch.pos.Offset})
	return true, nil
}

// joinLocked adds sub to channel, creating it (and subscribing the
// instance at the broker) for the first subscriber.
func (h *Hub) joinLocked(s *shard, channel string, sub Subscriber) (*chanState, error) {
	ch := s.channels[channel]
	if ch == nil {
		ch = &chanState{subs: map[Subscriber]format{}, compress: h.cfg.Compress != nil && h.cfg.Compress(channel)}
		s.channels[channel] = ch
		h.stats.Channels.Add(1)
		h.broker.Subscribe(channel)
	}
	if _, ok := ch.subs[sub]; ok {
		return nil, ErrAlreadySubscribed
	}
	ch.subs[sub] = formatOf(sub, ch.compress)
	return ch, nil
}

// Unsubscribe removes sub from channel; the last one out unsubscribes the
// instance at the broker. It reports whether sub was subscribed.
func (h *Hub) Unsubscribe(channel string, sub Subscriber) bool {
	s := h.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channel]
	if ch == nil {
		return false
	}
	if _, ok := ch.subs[sub]; !ok {
		return false
	}
	delete(ch.subs, sub)
	if len(ch.subs) == 0 {
		if ch.retry != nil {
			ch.retry.Stop()
		}
		delete(s.channels, channel)
		h.stats.Channels.Add(-1)
		h.broker.Unsubscribe(channel)
	}
	return true
}

// Observe tells the hub the position a subscriber of channel was given
// (its subscribe or resume reply), so that an epoch change or a gap is
// noticed even before the channel's first delivery. Until something is
// delivered the lowest observed offset of an epoch stands: a subscriber
// told an earlier top must still get what came after it. Positions arrive
// in no fixed order, so a publication at or below the observed one is
// still delivered (giveWay): a subscriber whose answer is yet to come may
// need it.
func (h *Hub) Observe(channel string, pos broker.Position) {
	if pos.Epoch == "" {
		return
	}
	s := h.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channel]
	switch {
	case ch == nil:
	case ch.pos.Epoch == "":
		ch.pos, ch.observed = holdback.Position{Epoch: pos.Epoch, Offset: pos.Offset}, true
	case ch.observed && ch.pos.Epoch == pos.Epoch && pos.Offset < ch.pos.Offset:
		ch.pos.Offset = pos.Offset
	}
}

// Resync implements broker.Sink: the broker may have missed publications
// of channel without seeing a later one (its subscription lapsed and is
// back, or it gave up on a publication Deliver refused), so the shard
// worker reads history from the last offset delivered and delivers what
// was missed (or announces an epoch change), holding live publications
// meanwhile.
//
// The request takes its place in the shard's queue, never refused for the
// budget (its small cost is counted like a publication's): it starts once the publications queued before it are delivered. Run
// ahead of them (as control work), it would read history from before
// them, announce as lost what history no longer keeps but the queue still
// holds (a full hub's backlog), and then drop the queued ones as
// duplicates.
func (h *Hub) Resync(channel string) {
	m := resyncMarker(channel)
	h.stats.Queued.Add(queueCost(m)) // given back when it is taken, as for a publication
	if !h.shard(channel).queue.push(m) {
		h.stats.Queued.Add(-queueCost(m))
	}
}

// resyncMarker is a resync request as it waits in a shard's queue: a gap,
// of unknown extent, at that point of the channel's stream. KindGap is
// internal to a gateway: no broker delivers it.
func resyncMarker(channel string) *codec.Publication {
	return &codec.Publication{Channel: []byte(channel), Kind: codec.KindGap}
}

// Subscribers returns how many local subscribers channel has.
func (h *Hub) Subscribers(channel string) int {
	s := h.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[channel]; ch != nil {
		return len(ch.subs)
	}
	return 0
}

// Deliver implements broker.Sink: it queues p on its channel's shard
// without blocking and reports false (counted) when the queue budget is
// spent. The hub cannot tell a refusal the broker retries (Redis holds p
// for a while) or that unpublishes p (memory) from a loss: a broker that
// gives p up calls Resync, which reads it back from history even when
// nothing follows it.
func (h *Hub) Deliver(p *codec.Publication) bool {
	size := queueCost(p)
	if h.stats.Queued.Add(size) > h.cfg.QueueBytes || !h.shardBytes(p.Channel).queue.push(p) {
		h.stats.Queued.Add(-size)
		h.stats.Dropped.Add(1)
		return false
	}
	return true
}

// Congested reports whether the fan-out queues hold more than half their
// budget: publishing more now would risk drops.
func (h *Hub) Congested() bool { return h.stats.Queued.Load() > h.cfg.QueueBytes/2 }

// AdmitPublish is asked before a local publisher (a client, the API)
// publishes: while the hub is congested it refuses (counted), so the
// publisher is told "not published, retry later" instead of "ok" for a
// publication fan-out might have to drop.
func (h *Hub) AdmitPublish() bool {
	if h.Congested() {
		h.stats.Refused.Add(1)
		return false
	}
	return true
}

// queueCost is what a queued publication counts against the budget: its
// bytes and the envelope around them.
func queueCost(p *codec.Publication) int64 {
	return int64(len(p.Data) + len(p.Channel) + len(p.Epoch) + len(p.Client) + len(p.User) + 160)
}

// Channels lists the channels with local subscribers.
func (h *Hub) Channels() []string {
	var out []string
	for _, s := range h.shards {
		s.mu.Lock()
		for name := range s.channels {
			out = append(out, name)
		}
		s.mu.Unlock()
	}
	return out
}
