package memory

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/wsgate/wsgate/gateway/broker"
)

// idemTable remembers, per (channel, key), the position an idempotent
// publish got, for ttl after it, and at most capacity entries (the oldest
// go first: with one TTL, the oldest is also the first to expire).
type idemTable struct {
	mu       sync.Mutex
	ttl      time.Duration
	capacity int
	entries  map[idemID]*list.Element // of *idemEntry
	order    list.List                // oldest first
}

type idemID struct{ channel, key string }

type idemEntry struct {
	id      idemID
	sum     [sha256.Size]byte // of the data, to catch a key reused for other data
	pos     broker.Position
	expires time.Time
}

func (t *idemTable) init(ttl time.Duration, capacity int) {
	t.ttl, t.capacity = ttl, capacity
	t.entries = map[idemID]*list.Element{}
}

// lookup returns the entry of (channel, key) if it is still remembered.
func (t *idemTable) lookup(channel, key string, now time.Time) (*idemEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	el, ok := t.entries[idemID{channel, key}]
	if !ok {
		return nil, false
	}
	return el.Value.(*idemEntry), true
}

// remember records a successful publish of (channel, key).
func (t *idemTable) remember(channel, key string, sum [sha256.Size]byte, pos broker.Position, now time.Time) {
	e := &idemEntry{id: idemID{channel, key}, sum: sum, pos: pos, expires: now.Add(t.ttl)}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries[e.id] = t.order.PushBack(e)
	for t.order.Len() > t.capacity {
		t.drop(t.order.Front())
	}
}

// expire drops the entries past their time, all at the front.
func (t *idemTable) expire(now time.Time) {
	for f := t.order.Front(); f != nil && !now.Before(f.Value.(*idemEntry).expires); f = t.order.Front() {
		t.drop(f)
	}
}

func (t *idemTable) drop(el *list.Element) {
	delete(t.entries, t.order.Remove(el).(*idemEntry).id)
}
