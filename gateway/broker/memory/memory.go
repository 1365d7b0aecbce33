// Package memory is the embedded broker: one process, no dependencies, the
// same semantics as the Redis broker — per-channel offsets and epochs,
// bounded history, delivery only for subscribed channels, in order.
package memory

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

const shards = 64

// idemCapacity bounds the idempotency keys remembered, over all channels:
// ~250 bytes each with a UUID key, so ~25 MB when full. Past it the oldest
// are forgotten before their TTL.
const idemCapacity = 100_000

// Broker is the in-process broker. Its state is a channel → stream table,
// sharded so publishers on different channels do not contend.
type Broker struct {
	node   []byte
	seed   maphash.Seed
	policy broker.HistoryPolicy
	sink   broker.Sink
	shards [shards]shard
	// idem is one table for every shard, so that one busy channel may use
	// all of idemCapacity; a shard's lock is taken before it, never after.
	idem idemTable
	stop chan struct{}
	wg   sync.WaitGroup
	now  func() time.Time
}

type shard struct {
	mu       sync.Mutex
	channels map[string]*stream
}

// stream is one channel: its position, whether this instance subscribed,
// and its retained history (a ring of at most the policy's size). A stream
// nobody subscribes to is kept while it has unexpired history; once it is
// gone, the channel starts over with a new epoch, so clients know not to
// trust offsets from before.
type stream struct {
	offset     uint64
	epoch      []byte // shared by the stream's publications, never modified
	subscribed bool
	lastPub    time.Time
	size       int
	ttl        time.Duration
	hist       []entry // ring buffer, len ≤ size
	head       int     // index of the oldest entry
}

type entry struct {
	offset uint64
	data   []byte
	at     time.Time
}

// New returns an embedded broker with broker.DefaultHistory whose publications
// carry node as origin.
func New(node string) *Broker { return NewWithHistory(node, broker.DefaultHistory) }

// NewWithHistory returns an embedded broker keeping history per policy and
// idempotency keys for broker.DefaultIdempotencyTTL.
func NewWithHistory(node string, policy broker.HistoryPolicy) *Broker {
	return NewWithConfig(Config{Node: node, History: policy})
}

// Config configures the embedded broker.
type Config struct {
	Node           string               // origin of its publications
	History        broker.HistoryPolicy // default: broker.DefaultHistory
	IdempotencyTTL time.Duration        // default: broker.DefaultIdempotencyTTL
}

// NewWithConfig returns an embedded broker configured by cfg.
func NewWithConfig(cfg Config) *Broker {
	if cfg.History == nil {
		cfg.History = broker.DefaultHistory
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = broker.DefaultIdempotencyTTL
	}
	b := &Broker{node: []byte(cfg.Node), seed: maphash.MakeSeed(), policy: cfg.History, stop: make(chan struct{}), now: time.Now}
	for i := range b.shards {
		b.shards[i].channels = map[string]*stream{}
	}
	b.idem.init(cfg.IdempotencyTTL, idemCapacity)
	return b
}

// Start implements broker.Broker: it also starts the sweeper that forgets
// streams whose history expired.
func (b *Broker) Start(sink broker.Sink) error {
	b.sink = sink
	b.wg.Add(1)
	go b.sweep(time.Second)
	return nil
}

// Close implements broker.Broker.
func (b *Broker) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.wg.Wait()
	return nil
}

func (b *Broker) shard(channel string) *shard {
	return &b.shards[maphash.String(b.seed, channel)%shards]
}

// streamLocked returns channel's stream, creating it (new epoch) if needed.
func (b *Broker) streamLocked(s *shard, channel string) *stream {
	st := s.channels[channel]
	if st == nil {
		size, ttl := b.policy(channel)
		st = &stream{epoch: newEpoch(), size: size, ttl: ttl}
		s.channels[channel] = st
	}
	return st
}

// Publish assigns the next offset, hands the publication to the sink (if
// this instance subscribed) and records it in history, under the shard lock,
// so offsets reach the sink in increasing order and a refused publication
// uses no offset. An idempotency key is claimed in the same step.
func (b *Broker) Publish(channel string, data []byte, opts broker.PublishOptions, done func(broker.PublishResult, error)) {
	select {
	case <-b.stop: // its history dies with it: nothing would be kept or delivered
		done(broker.PublishResult{}, fmt.Errorf("%w: the embedded broker is closed", broker.ErrUnavailable))
		return
	default:
	}
	s := b.shard(channel)
	s.mu.Lock()
	now := b.now()
	var sum [sha256.Size]byte
	if key := opts.IdempotencyKey; key != "" {
		sum = sha256.Sum256(data)
		if e, ok := b.idem.lookup(channel, key, now); ok {
			s.mu.Unlock()
			if e.sum != sum {
				done(broker.PublishResult{}, broker.ErrKeyReused)
				return
			}
			done(broker.PublishResult{Position: e.pos, Replayed: true}, nil)
			return
		}
	}
	st := b.streamLocked(s, channel)
	pub := &codec.Publication{
		Channel: []byte(channel), Data: data, Offset: st.offset + 1, Epoch: st.epoch,
		Node: b.node, Time: now.UnixMilli(),
	}
	if st.subscribed && !b.sink.Deliver(pub) {
		s.mu.Unlock()
		done(broker.PublishResult{}, broker.ErrOverloaded)
		return
	}
	st.offset++
	st.lastPub = now
	st.remember(entry{offset: st.offset, data: data, at: now})
	pos := broker.Position{Offset: st.offset, Epoch: string(st.epoch)}
	if opts.IdempotencyKey != "" {
		b.idem.remember(channel, opts.IdempotencyKey, sum, pos, now)
	}
	s.mu.Unlock()
	done(broker.PublishResult{Position: pos}, nil)
}

// PublishEvent implements broker.Broker: the event goes to the sink when
// this instance subscribed to channel, under the shard lock so it keeps its
// place among the channel's publications. It creates no stream, uses no
// offset and enters no history; a full sink drops it.
func (b *Broker) PublishEvent(channel string, kind codec.Kind, client, user string) {
	s := b.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.channels[channel]; st == nil || !st.subscribed {
		return
	}
	b.sink.Deliver(&codec.Publication{
		Channel: []byte(channel), Kind: kind, Client: []byte(client), User: []byte(user),
		Node: b.node, Time: b.now().UnixMilli(),
	})
}

// remember appends e to the history ring.
func (st *stream) remember(e entry) {
	if st.size <= 0 {
		return
	}
	if len(st.hist) < st.size {
		st.hist = append(st.hist, e)
		return
	}
	st.hist[st.head] = e
	st.head = (st.head + 1) % len(st.hist)
}

// retained returns the unexpired history, oldest first.
func (st *stream) retained(now time.Time) []entry {
	out := make([]entry, 0, len(st.hist))
	for i := range st.hist {
		e := st.hist[(st.head+i)%len(st.hist)]
		if now.Sub(e.at) < st.ttl {
			out = append(out, e)
		}
	}
	return out
}

// Subscribe implements broker.Broker.
func (b *Broker) Subscribe(channel string) {
	s := b.shard(channel)
	s.mu.Lock()
	b.streamLocked(s, channel).subscribed = true
	s.mu.Unlock()
}

// Unsubscribe implements broker.Broker. The stream (and its history)
// stays until the sweeper finds its history expired.
func (b *Broker) Unsubscribe(channel string) {
	s := b.shard(channel)
	s.mu.Lock()
	if st := s.channels[channel]; st != nil {
		st.subscribed = false
	}
	s.mu.Unlock()
}

// Position implements broker.Broker.
func (b *Broker) Position(channel string, done func(broker.Position, error)) {
	s := b.shard(channel)
	s.mu.Lock()
	st := b.streamLocked(s, channel)
	pos := broker.Position{Offset: st.offset, Epoch: string(st.epoch)}
	s.mu.Unlock()
	done(pos, nil)
}

// History implements broker.Broker.
func (b *Broker) History(channel string, q broker.HistoryQuery, done func(broker.HistoryResult, error)) {
	s := b.shard(channel)
	s.mu.Lock()
	st := b.streamLocked(s, channel)
	kept := st.retained(b.now())
	res := broker.HistoryResult{Position: broker.Position{Offset: st.offset, Epoch: string(st.epoch)}}
	s.mu.Unlock()
	res.Publications = selectHistory(kept, q)
	done(res, nil)
}

// selectHistory applies a query to retained entries (oldest first).
func selectHistory(kept []entry, q broker.HistoryQuery) []broker.HistoryEntry {
	var out []broker.HistoryEntry
	if q.Reverse {
		for i := len(kept) - 1; i >= 0 && kept[i].offset > q.Since && (q.Limit <= 0 || len(out) < q.Limit); i-- {
			out = append(out, broker.HistoryEntry{Offset: kept[i].offset, Data: kept[i].data})
		}
		return out
	}
	for _, e := range kept {
		if e.offset <= q.Since {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, broker.HistoryEntry{Offset: e.offset, Data: e.data})
	}
	return out
}

// sweep periodically forgets streams nobody subscribes to whose history
// has expired, so memory is bounded by live channels and retained history.
func (b *Broker) sweep(every time.Duration) {
	defer b.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		now := b.now()
		for i := range b.shards {
			s := &b.shards[i]
			s.mu.Lock()
			for ch, st := range s.channels {
				if !st.subscribed && (st.size <= 0 || now.Sub(st.lastPub) >= st.ttl) {
					delete(s.channels, ch)
				}
			}
			s.mu.Unlock()
		}
	}
}

func newEpoch() []byte {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.AppendEncode(nil, b[:])
}
