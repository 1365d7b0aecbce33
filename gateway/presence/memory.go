package presence

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
)

const memoryShards = 64

// Memory is the in-process store for a single instance. It is sharded by
// channel so joins on different channels do not contend on one lock.
type Memory struct {
	seed     maphash.Seed
	shards   [memoryShards]memShard
	counters Counters
	closed   atomic.Bool
}

type memShard struct {
	mu       sync.Mutex
	channels map[string]*memChannel
}

// memChannel keeps a count per user next to the members, so Stats is O(1)
// as it is on Redis.
type memChannel struct {
	members map[string]Member
	users   map[string]int // non-empty user → its clients in the channel
}

// NewMemory returns an empty in-process store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].channels = map[string]*memChannel{}
	}
	return m
}

func (s *Memory) shard(channel string) *memShard {
	return &s.shards[maphash.String(s.seed, channel)%memoryShards]
}

// Join implements Store. Info is copied: the caller may reuse its buffer.
func (s *Memory) Join(channel string, m Member) {
	if s.closed.Load() {
		return
	}
	if !valid(m) {
		s.counters.Rejected.Add(1)
		return
	}
	if len(m.Info) == 0 {
		m.Info = nil // as Redis returns it
	} else {
		m.Info = slices.Clone(m.Info)
	}
	sh := s.shard(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[channel]
	if ch == nil {
		ch = &memChannel{members: map[string]Member{}, users: map[string]int{}}
		sh.channels[channel] = ch
	}
	if old, ok := ch.members[m.Client]; ok {
		ch.forget(old.User)
	}
	ch.members[m.Client] = m
	if m.User != "" {
		ch.users[m.User]++
	}
}

// Leave implements Store.
func (s *Memory) Leave(channel string, client string) {
	if s.closed.Load() {
		return
	}
	sh := s.shard(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[channel]
	if ch == nil {
		return
	}
	old, ok := ch.members[client]
	if !ok {
		return
	}
	delete(ch.members, client)
	ch.forget(old.User)
	if len(ch.members) == 0 {
		delete(sh.channels, channel) // an empty channel costs nothing
	}
}

func (ch *memChannel) forget(user string) {
	if user == "" {
		return
	}
	if ch.users[user]--; ch.users[user] <= 0 {
		delete(ch.users, user)
	}
}

// Members implements Store; done runs before Members returns.
func (s *Memory) Members(channel string, done func([]Member, error)) {
	if s.closed.Load() {
		done(nil, ErrClosed)
		return
	}
	sh := s.shard(channel)
	sh.mu.Lock()
	var out []Member
	if ch := sh.channels[channel]; ch != nil {
		out = make([]Member, 0, len(ch.members))
		for _, m := range ch.members {
			m.Info = slices.Clone(m.Info) // the caller may modify what it gets
			out = append(out, m)
		}
	}
	sh.mu.Unlock()
	done(out, nil)
}

// Stats implements Store; done runs before Stats returns.
func (s *Memory) Stats(channel string, done func(Stats, error)) {
	if s.closed.Load() {
		done(Stats{}, ErrClosed)
		return
	}
	sh := s.shard(channel)
	sh.mu.Lock()
	var st Stats
	if ch := sh.channels[channel]; ch != nil {
		st = Stats{Clients: len(ch.members), Users: len(ch.users)}
	}
	sh.mu.Unlock()
	done(st, nil)
}

// Counters returns the store's counters (Rejected only: nothing is queued).
func (s *Memory) Counters() *Counters { return &s.counters }

// MetricStats is Counters for the gateway's metrics writer (gateway/metrics.go).
func (s *Memory) MetricStats() any { return &s.counters }

// Close implements Store: later writes are ignored and reads fail with
// ErrClosed, as on Redis. The memory store holds no goroutines.
func (s *Memory) Close() error {
	s.closed.Store(true)
	return nil
}
