// Package memory is the embedded broker: one process, no dependencies, the
// same semantics as the Redis broker (per-channel offsets and epochs,
// delivery only for subscribed channels, in order).
package memory

import (
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

const shards = 64

// Broker is the in-process broker. Its state is a channel → stream table,
// sharded so publishers on different channels do not contend.
type Broker struct {
	node   []byte
	seed   maphash.Seed
	sink   broker.Sink
	shards [shards]shard
}

type shard struct {
	mu       sync.Mutex
	channels map[string]*stream
}

// stream is one channel's position. It exists while the channel has a local
// subscriber: a channel nobody listens to has nothing to keep (when it is
// subscribed again it starts a new epoch, so clients know not to trust old
// offsets).
type stream struct {
	offset uint64
	epoch  []byte // shared by the stream's publications, never modified
}

// New returns an embedded broker whose publications carry node as origin.
func New(node string) *Broker {
	b := &Broker{node: []byte(node), seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].channels = map[string]*stream{}
	}
	return b
}

// Start implements broker.Broker.
func (b *Broker) Start(sink broker.Sink) error {
	b.sink = sink
	return nil
}

func (b *Broker) shard(channel string) *shard {
	return &b.shards[maphash.String(b.seed, channel)%shards]
}

// Publish assigns the next offset and hands the publication to the sink
// under the shard lock, so offsets reach the sink in increasing order.
func (b *Broker) Publish(channel string, data []byte, done func(broker.Position, error)) {
	s := b.shard(channel)
	s.mu.Lock()
	st := s.channels[channel]
	if st == nil { // no subscriber anywhere: nothing to deliver or keep
		s.mu.Unlock()
		done(broker.Position{}, nil)
		return
	}
	pub := &codec.Publication{
		Channel: []byte(channel), Data: data, Offset: st.offset + 1, Epoch: st.epoch,
		Node: b.node, Time: time.Now().UnixMilli(),
	}
	if !b.sink.Deliver(pub) {
		s.mu.Unlock()
		done(broker.Position{}, broker.ErrOverloaded)
		return
	}
	st.offset++
	pos := broker.Position{Offset: st.offset, Epoch: string(st.epoch)}
	s.mu.Unlock()
	done(pos, nil)
}

// Subscribe implements broker.Broker.
func (b *Broker) Subscribe(channel string) {
	s := b.shard(channel)
	s.mu.Lock()
	if s.channels[channel] == nil {
		s.channels[channel] = &stream{epoch: newEpoch()}
	}
	s.mu.Unlock()
}

// Unsubscribe implements broker.Broker.
func (b *Broker) Unsubscribe(channel string) {
	s := b.shard(channel)
	s.mu.Lock()
	delete(s.channels, channel)
	s.mu.Unlock()
}

// Position implements broker.Broker.
func (b *Broker) Position(channel string, done func(broker.Position, error)) {
	s := b.shard(channel)
	s.mu.Lock()
	var pos broker.Position
	if st := s.channels[channel]; st != nil {
		pos = broker.Position{Offset: st.offset, Epoch: string(st.epoch)}
	}
	s.mu.Unlock()
	done(pos, nil)
}

// Close implements broker.Broker.
func (b *Broker) Close() error { return nil }

func newEpoch() []byte {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.AppendEncode(nil, b[:])
}
