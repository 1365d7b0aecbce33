package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestIdempotentPublishOnce(t *testing.T) {
	f, h := newTest(t)
	body := `{"channel":"c","data":{"n":1},"idempotency_key":"k1"}`
	first := call(h, "publish", body)
	expect(t, first, 200, `{"offset":1,"epoch":"ep-c"}`)
	again := call(h, "publish", body)
	expect(t, again, 200, `{"offset":1,"epoch":"ep-c"}`)
	if f.calls("c") != 1 {
		t.Fatalf("published %d times", f.calls("c"))
	}
	if first.header.Get("Idempotent-Replayed") != "" || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("Idempotent-Replayed header wrong")
	}
	// Another key, or none, publishes again.
	expect(t, call(h, "publish", `{"channel":"c","data":{"n":1},"idempotency_key":"k2"}`), 200, `{"offset":2,"epoch":"ep-c"}`)
	expect(t, call(h, "publish", `{"channel":"c","data":{"n":1}}`), 200, `{"offset":3,"epoch":"ep-c"}`)
}

// TestIdempotentPublishConcurrent holds the first publish in flight until
// every repeat is waiting for it (synctest.Wait: all goroutines blocked).
func TestIdempotentPublishConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, h := newTest(t)
		f.entered, f.release = make(chan struct{}), make(chan struct{})
		body := `{"channel":"c","b64data":"AQI=","idempotency_key":"once"}`
		const n = 10
		results := make([]result, n)
		var wg sync.WaitGroup
		wg.Go(func() { results[0] = call(h, "publish", body) })
		<-f.entered // the first is inside Publish
		for i := 1; i < n; i++ {
			wg.Go(func() { results[i] = call(h, "publish", body) })
		}
		synctest.Wait() // every repeat is blocked waiting for the first
		close(f.release)
		wg.Wait()
		if f.calls("c") != 1 {
			t.Fatalf("published %d times", f.calls("c"))
		}
		replayed := 0
		for _, r := range results {
			expect(t, r, 200, `{"offset":1,"epoch":"ep-c"}`)
			if r.header.Get("Idempotent-Replayed") == "true" {
				replayed++
			}
		}
		if replayed != n-1 {
			t.Fatalf("%d replayed, want %d", replayed, n-1)
		}
	})
}

func TestIdempotentPublishRetriedAfterFailure(t *testing.T) {
	f, h := newTest(t)
	f.failOn["c"] = fmt.Errorf("redis down: %w", ErrUnavailable)
	body := `{"channel":"c","data":1,"idempotency_key":"k"}`
	if r := call(h, "publish", body); r.status != 503 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	delete(f.failOn, "c")
	expect(t, call(h, "publish", body), 200, `{"offset":1,"epoch":"ep-c"}`)
	expect(t, call(h, "publish", body), 200, `{"offset":1,"epoch":"ep-c"}`)
	if f.calls("c") != 2 {
		t.Fatalf("published %d times, want the failure and one success", f.calls("c"))
	}
}

func TestIdempotencyKeyReused(t *testing.T) {
	f, h := newTest(t)
	expect(t, call(h, "publish", `{"channel":"c","data":1,"idempotency_key":"k"}`), 200, `{"offset":1,"epoch":"ep-c"}`)
	r := call(h, "publish", `{"channel":"c","data":2,"idempotency_key":"k"}`)
	if r.status != 409 || r.errorReason() != `"idempotency_key" was already used with different data on this channel` {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// The key is scoped by channel.
	expect(t, call(h, "publish", `{"channel":"d","data":2,"idempotency_key":"k"}`), 200, `{"offset":1,"epoch":"ep-d"}`)
	if f.calls("c") != 1 || f.calls("d") != 1 {
		t.Fatalf("published %v", f.published)
	}
}

// A broadcast retried with its key redoes only the channels that failed,
// and a publish with the same key sees the broadcast's result.
func TestIdempotentBroadcast(t *testing.T) {
	f, h := newTest(t)
	f.failOn["b"] = errString("boom")
	body := `{"channels":["a","b"],"data":"x","idempotency_key":"bk"}`
	expect(t, call(h, "broadcast", body), 200,
		`{"results":[{"channel":"a","offset":1,"epoch":"ep-a"},{"channel":"b","error":"boom"}]}`)
	delete(f.failOn, "b")
	for range 2 {
		expect(t, call(h, "broadcast", body), 200,
			`{"results":[{"channel":"a","offset":1,"epoch":"ep-a"},{"channel":"b","offset":1,"epoch":"ep-b"}]}`)
	}
	expect(t, call(h, "publish", `{"channel":"a","data":"x","idempotency_key":"bk"}`), 200, `{"offset":1,"epoch":"ep-a"}`)
	if f.calls("a") != 1 || f.calls("b") != 2 {
		t.Fatalf("a published %d times, b %d", f.calls("a"), f.calls("b"))
	}
	// Other data under the same key is a per-channel error.
	expect(t, call(h, "broadcast", `{"channels":["a"],"data":"y","idempotency_key":"bk"}`), 200,
		`{"results":[{"channel":"a","error":"\"idempotency_key\" was already used with different data on this channel"}]}`)
}

// fakeClock is a settable clock for the cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// counter is a publish function counting its calls.
type counter struct{ n uint64 }

func (c *counter) publish() (pubResult, error) {
	c.n++
	return pubResult{Offset: c.n, Epoch: "e"}, nil
}

func TestIdemCacheExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	c := newIdemCache(10, time.Minute, clock.Now)
	var pub counter
	ctx := context.Background()
	res, _, _ := c.do(ctx, "k", "ch", nil, pub.publish)
	clock.advance(time.Minute - time.Nanosecond)
	if again, replayed, _ := c.do(ctx, "k", "ch", nil, pub.publish); !replayed || again != res {
		t.Fatalf("before the TTL: %v %v", again, replayed)
	}
	clock.advance(time.Nanosecond)
	if again, replayed, _ := c.do(ctx, "k", "ch", nil, pub.publish); replayed || again.Offset != 2 {
		t.Fatalf("after the TTL: %v %v", again, replayed)
	}
	if c.len() != 1 {
		t.Fatalf("%d entries, want the expired one replaced", c.len())
	}
}

func TestIdemCacheCapacity(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	c := newIdemCache(3, time.Hour, clock.Now)
	var pub counter
	ctx := context.Background()
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5"} {
		c.do(ctx, k, "ch", nil, pub.publish)
		clock.advance(time.Second)
	}
	if c.len() != 3 {
		t.Fatalf("%d entries, want 3", c.len())
	}
	if _, replayed, _ := c.do(ctx, "k5", "ch", nil, pub.publish); !replayed {
		t.Fatal("newest key evicted")
	}
	if _, replayed, _ := c.do(ctx, "k1", "ch", nil, pub.publish); replayed {
		t.Fatal("oldest key kept")
	}
}

// An entry in flight is never evicted, however full the cache, so that a
// repeat always finds it.
func TestIdemCacheKeepsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newIdemCache(1, time.Hour, time.Now)
		release := make(chan struct{})
		var calls int
		go c.do(t.Context(), "slow", "ch", nil, func() (pubResult, error) {
			calls++
			<-release
			return pubResult{Offset: 7}, nil
		})
		synctest.Wait()
		var pub counter
		c.do(t.Context(), "k1", "ch", nil, pub.publish)
		c.do(t.Context(), "k2", "ch", nil, pub.publish)
		done := make(chan pubResult)
		go func() {
			res, _, _ := c.do(t.Context(), "slow", "ch", nil, func() (pubResult, error) {
				t.Error("in-flight key published twice")
				return pubResult{}, nil
			})
			done <- res
		}()
		synctest.Wait()
		close(release)
		if res := <-done; res.Offset != 7 || calls != 1 {
			t.Fatalf("repeat got %v after %d calls", res, calls)
		}
	})
}

// When the first publish fails, a request waiting for it publishes itself;
// when it panics, waiters are not stuck.
func TestIdemCacheWaiterTakesOver(t *testing.T) {
	for _, panics := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			c := newIdemCache(10, time.Hour, time.Now)
			release := make(chan struct{})
			go func() {
				defer func() { _ = recover() }()
				c.do(t.Context(), "k", "ch", nil, func() (pubResult, error) {
					<-release
					if panics {
						panic("backend bug")
					}
					return pubResult{}, errors.New("first failed")
				})
			}()
			synctest.Wait()
			done := make(chan pubResult)
			var pub counter
			go func() {
				res, replayed, err := c.do(t.Context(), "k", "ch", nil, pub.publish)
				if err != nil || replayed {
					t.Errorf("waiter: %v %v", replayed, err)
				}
				done <- res
			}()
			synctest.Wait()
			if pub.n != 0 {
				t.Fatal("waiter published while the first was in flight")
			}
			close(release)
			if res := <-done; res.Offset != 1 {
				t.Fatalf("waiter got %v", res)
			}
		})
	}
}

// A waiter gives up when its own request ends.
func TestIdemCacheWaiterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newIdemCache(10, time.Hour, time.Now)
		release := make(chan struct{})
		go c.do(t.Context(), "k", "ch", nil, func() (pubResult, error) {
			<-release
			return pubResult{}, nil
		})
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, _, err := c.do(ctx, "k", "ch", nil, nil)
		if status, _ := classify(err); !errors.Is(err, context.DeadlineExceeded) || status != 503 {
			t.Fatalf("got %v (%d)", err, status)
		}
		close(release)
	})
}
