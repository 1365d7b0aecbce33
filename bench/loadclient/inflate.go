package loadclient

import (
	"bytes"
	"hash/maphash"
	"sync"

	"github.com/wsgate/wsgate/gateway/deflate"
)

// inflateCache inflates each distinct compressed message once for the
// whole pool. A fan-out sends the same compressed frame to thousands of
// connections of one pool; inflating it for each would make the load
// client, not the server under test, the bottleneck of a compression
// benchmark on a shared machine. Entries are matched by their bytes (a
// hash, then a comparison), so a hit is the same message, inflated.
type inflateCache struct {
	seed maphash.Seed

	mu      sync.Mutex
	entries [cacheEntries]cacheEntry
	next    int
}

// cacheEntries covers the publications in flight of a burst.
const cacheEntries = 64

type cacheEntry struct {
	hash uint64
	z    []byte // the compressed message (a copy)
	out  []byte // what it inflates to; never modified once stored
}

func newInflateCache() *inflateCache { return &inflateCache{seed: maphash.MakeSeed()} }

// inflate returns z inflated (bounded by limit). The result is shared by
// every caller that got the same message: read it, never modify it.
func (c *inflateCache) inflate(z []byte, limit int) ([]byte, error) {
	h := maphash.Bytes(c.seed, z)
	c.mu.Lock()
	for i := range c.entries {
		if e := &c.entries[i]; e.hash == h && e.z != nil && bytes.Equal(e.z, z) {
			out := e.out
			c.mu.Unlock()
			return out, nil
		}
	}
	c.mu.Unlock()
	out, err := deflate.Inflate(nil, z, limit)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[c.next] = cacheEntry{hash: h, z: bytes.Clone(z), out: out}
	c.next = (c.next + 1) % cacheEntries
	c.mu.Unlock()
	return out, nil
}
