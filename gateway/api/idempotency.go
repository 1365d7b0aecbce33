package api

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

const (
	// idemTTL is how long a result is kept: long enough for a backend's
	// retry loop with backoff, short enough to bound memory.
	idemTTL = 5 * time.Minute
	// idemCapacity bounds the memory: an entry with a UUID key costs
	// about 420 bytes (measured), so ~42 MB when full.
	idemCapacity = 100_000
)

var (
	errKeyReused = &statusError{http.StatusConflict,
		`"idempotency_key" was already used with different data on this channel`}
	// errAborted stands for a publish that panicked, so that requests
	// waiting on it retry instead of waiting forever.
	errAborted = errors.New("publish aborted")
)

// idemID scopes a key by channel: a broadcast is one publish per channel,
// and retrying it must redo exactly the channels that failed.
type idemID struct{ key, channel string }

type idemEntry struct {
	id   idemID
	sum  [sha256.Size]byte // of the data, to catch a key reused for other data
	done chan struct{}     // closed once res and err are final
	res  pubResult
	err  error
	// expires is set when the publish succeeds; only then is the entry
	// in the expiry order.
	expires time.Time
}

// idemCache remembers publish results by idempotency key: at most capacity
// successful ones, each for ttl after it completed. Entries in flight are
// in the map but not in the expiry order, so they are never evicted: a
// repeat always finds them and waits.
type idemCache struct {
	capacity int
	ttl      time.Duration
	now      func() time.Time

	mu      sync.Mutex
	entries map[idemID]*idemEntry
	order   *list.List // of *idemEntry, completed, oldest first = first to expire
}

func newIdemCache(capacity int, ttl time.Duration, now func() time.Time) *idemCache {
	return &idemCache{
		capacity: capacity,
		ttl:      ttl,
		now:      now,
		entries:  make(map[idemID]*idemEntry),
		order:    list.New(),
	}
}

// do runs publish unless (key, channel) already succeeded or is in flight,
// in which case it returns (or waits for) that result, with replayed set.
// A failed publish is forgotten, and whoever waited on it tries again.
func (c *idemCache) do(ctx context.Context, key, channel string, data []byte, publish func() (pubResult, error)) (res pubResult, replayed bool, err error) {
	id := idemID{key, channel}
	sum := sha256.Sum256(data)
	for {
		c.mu.Lock()
		c.expire()
		e, ok := c.entries[id]
		if !ok {
			e = &idemEntry{id: id, sum: sum, done: make(chan struct{})}
			c.entries[id] = e
			c.evict()
			c.mu.Unlock()
			return c.run(e, publish)
		}
		c.mu.Unlock()
		if e.sum != sum {
			return pubResult{}, false, errKeyReused
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return pubResult{}, false, fmt.Errorf("waiting for the first request with this idempotency_key: %w", ctx.Err())
		}
		if e.err == nil {
			return e.res, true, nil
		}
	}
}

func (c *idemCache) run(e *idemEntry, publish func() (pubResult, error)) (pubResult, bool, error) {
	e.err = errAborted
	defer c.finish(e)
	e.res, e.err = publish()
	return e.res, false, e.err
}

// finish publishes e's outcome: remembered on success, forgotten on
// failure (before done is closed, so a woken waiter cannot find it again).
func (c *idemCache) finish(e *idemEntry) {
	c.mu.Lock()
	if e.err != nil {
		delete(c.entries, e.id)
	} else {
		e.expires = c.now().Add(c.ttl)
		c.order.PushBack(e)
	}
	c.mu.Unlock()
	close(e.done)
}

// expire drops entries past their time; the order is by completion and
// the TTL is fixed, so they are all at the front.
func (c *idemCache) expire() {
	now := c.now()
	for f := c.order.Front(); f != nil && !now.Before(f.Value.(*idemEntry).expires); f = c.order.Front() {
		c.drop(f)
	}
}

// evict drops the oldest completed entries while over capacity.
func (c *idemCache) evict() {
	for len(c.entries) > c.capacity && c.order.Len() > 0 {
		c.drop(c.order.Front())
	}
}

func (c *idemCache) drop(el *list.Element) {
	delete(c.entries, c.order.Remove(el).(*idemEntry).id)
}

// len is the number of keys held, in flight included.
func (c *idemCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
