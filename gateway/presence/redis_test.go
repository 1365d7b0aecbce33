package presence

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/gateway/rediskeys"
)

func newClient(t testing.TB, addrs ...string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatalf("rueidis: %v", err)
	}
	t.Cleanup(c.Close) // registered first, so it runs after the stores' Close
	return c
}

// newRedis starts a store named node on client; t.Cleanup closes it.
func newRedis(t testing.TB, client rueidis.Client, node string, mutate func(*RedisConfig)) *Redis {
	t.Helper()
	cfg := RedisConfig{Client: client, Node: node, Timeout: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := NewRedis(cfg)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// threeInstances opens three stores with their own clients, as three
// gateway instances would.
func threeInstances(addrs []string, mutate func(*RedisConfig)) func(t *testing.T) [3]counted {
	return func(t *testing.T) [3]counted {
		var out [3]counted
		for i := range out {
			out[i] = newRedis(t, newClient(t, addrs...), fmt.Sprint("node", i), mutate)
		}
		return out
	}
}

func TestRedisBehaviour(t *testing.T) {
	srv := redistest.StartStandalone(t)
	runBehaviour(t, threeInstances([]string{srv.Addr()}, nil))
}

func TestRedisClusterBehaviour(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	runBehaviour(t, threeInstances(cl.Addrs(), nil))
}

// TestRedisCrashedInstanceExpires: an instance that stops refreshing (its
// store closed without leaving, as a crash would) loses its members within
// TTL, and Stats on the survivors count them out — clients and users —
// while the survivors' own members, refreshed, stay.
func TestRedisCrashedInstanceExpires(t *testing.T) {
	const ttl = time.Second
	srv := redistest.StartStandalone(t)
	short := func(c *RedisConfig) { c.TTL = ttl }
	a := newRedis(t, newClient(t, srv.Addr()), "a", short)
	b := newRedis(t, newClient(t, srv.Addr()), "b", short)
	c := newRedis(t, newClient(t, srv.Addr()), "c", short)
	a.Join("room", Member{Client: "a.1", User: "alice"})
	a.Join("room", Member{Client: "a.2", User: "alice"})
	a.Join("room", Member{Client: "a.3", User: "erin"}) // erin is only on a
	a.Join("room", Member{Client: "a.4"})
	a.Join("a-only", Member{Client: "a.1", User: "alice"})
	b.Join("room", Member{Client: "b.1", User: "alice"})
	b.Join("room", Member{Client: "b.2", User: "bob"})
	c.Join("room", Member{Client: "c.1"})
	settle(t, a, b, c)
	if st := stats(t, c, "room"); st != (Stats{Clients: 7, Users: 3}) {
		t.Fatalf("before the crash: %+v", st)
	}
	// Let a refresh once more, so its members' expiry is a full TTL away
	// from the crash at the latest.
	time.Sleep(ttl / 2)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "a's members to expire", 3*ttl, func() bool {
		return stats(t, b, "room") == Stats{Clients: 3, Users: 2}
	})
	t.Logf("a's members gone %v after it stopped (TTL %v)", took.Round(time.Millisecond), ttl)
	// Half a TTL of slack for a loaded machine: a member kept by its key's
	// TTL (keyTTLFactor×) or by a live refresh would take far longer.
	if took > ttl+ttl/2 {
		t.Errorf("members outlived their instance by %v, TTL is %v", took, ttl)
	}
	want := []Member{{Client: "b.1", User: "alice"}, {Client: "b.2", User: "bob"}, {Client: "c.1"}}
	if got := members(t, c, "room"); !equalMembers(got, want) {
		t.Fatalf("members after the crash: %v", got)
	}
	// The survivors refresh theirs: still there after several TTLs.
	for range 6 {
		time.Sleep(ttl / 2)
		if st := stats(t, b, "room"); st != (Stats{Clients: 3, Users: 2}) {
			t.Fatalf("survivors' members expired: %+v", st)
		}
	}
	// Nobody read a-only: its keys vanish by themselves (key TTL).
	keys := rediskeys.Layout{Prefix: "wsgate", Partitions: 64}.Presence("a-only")
	waitFor(t, "a-only's keys to expire", keyTTLFactor*ttl+time.Second, func() bool {
		n, err := srv.Do("EXISTS", keys[0], keys[1], keys[2])
		return err == nil && n == "0"
	})
	if n, _ := srv.Do("EXISTS", rediskeys.Layout{Prefix: "wsgate", Partitions: 64}.Presence("room")[0]); n != "1" {
		t.Fatalf("room's zset is gone (EXISTS %s)", n)
	}
}

// TestRedisRefreshRestores: Redis loses everything (FLUSHALL, FUNCTION
// FLUSH, as after a restart without persistence): the functions are loaded
// again and every instance's refresh brings its members back: at the next
// refresh (every TTL/3), before the TTL on a loaded test machine.
func TestRedisRefreshRestores(t *testing.T) {
	const ttl = 900 * time.Millisecond
	srv := redistest.StartStandalone(t)
	short := func(c *RedisConfig) { c.TTL = ttl }
	a := newRedis(t, newClient(t, srv.Addr()), "a", short)
	b := newRedis(t, newClient(t, srv.Addr()), "b", short)
	for i := range 300 {
		a.Join(fmt.Sprint("ch", i%7), Member{Client: fmt.Sprint("a.", i), User: fmt.Sprint("u", i%11)})
		b.Join(fmt.Sprint("ch", i%7), Member{Client: fmt.Sprint("b.", i), User: fmt.Sprint("u", i%13)})
	}
	settle(t, a, b)
	before := stats(t, a, "ch3")
	for _, cmd := range [][]string{{"FLUSHALL"}, {"FUNCTION", "FLUSH"}} {
		if _, err := srv.Do(cmd...); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	took := waitFor(t, "members to come back", 3*ttl, func() bool {
		st, err := statsErr(b, "ch3")
		return err == nil && st == before
	})
	t.Logf("restored %+v %v after the flush", before, took.Round(time.Millisecond))
	// Due at the next refresh (every TTL/3); the bound leaves two more
	// intervals for a loaded machine.
	if took > ttl {
		t.Errorf("restore took %v, refresh interval is %v", took, ttl/3)
	}
}

// TestRedisDropsAreRepaired: while Redis is paused, joins beyond the queue's
// bound are dropped and counted; the refresh writes them once Redis is
// back, since the instance keeps its live members locally — a dropped
// re-join that changed a member's user and info included.
func TestRedisDropsAreRepaired(t *testing.T) {
	const ttl = 900 * time.Millisecond
	srv := redistest.StartStandalone(t)
	a := newRedis(t, newClient(t, srv.Addr()), "a", func(c *RedisConfig) {
		c.TTL, c.QueueDepth, c.Timeout = ttl, 4, 300*time.Millisecond
	})
	a.Join("solo", Member{Client: "s.1", User: "old", Info: []byte("old")})
	settle(t, a)
	srv.Stop()
	for i := range 50 {
		a.Join("room", Member{Client: fmt.Sprint("a.", i), User: fmt.Sprint("u", i%5), Info: []byte("new")})
	}
	a.Leave("room", "a.0") // dropped as well: a.0 must still go (it is not refreshed)
	// Dropped too: Redis has s.1 already, so only a refresh that writes
	// values (not just expiries) repairs it.
	a.Join("solo", Member{Client: "s.1", User: "new", Info: []byte("new")})
	before := a.Counters().Dropped.Load()
	srv.Cont()
	if before < 40 {
		t.Fatalf("%d calls dropped with a queue of 4 and Redis paused, want ≥ 40", before)
	}
	took := waitFor(t, "every member", 5*ttl, func() bool {
		st, err := statsErr(a, "room")
		return err == nil && st == Stats{Clients: 49, Users: 5}
	})
	waitFor(t, "s.1's new user and info", ttl, func() bool {
		ms, err := membersErr(a, "solo")
		return err == nil && len(ms) == 1 && ms[0].User == "new" && string(ms[0].Info) == "new"
	})
	dropped := a.Counters().Dropped.Load()
	t.Logf("%d dropped calls repaired %v after Redis came back (a.0, whose Leave was dropped, takes up to TTL %v)", dropped, took.Round(time.Millisecond), ttl)
}

// TestRedisClusterMasters: on a three-master cluster, channels owned by
// every master work, and each channel's three keys sit on its owner.
func TestRedisClusterMasters(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	ins := threeInstances(cl.Addrs(), nil)(t)
	names := rediskeys.Layout{Prefix: "wsgate", Partitions: 64}
	byMaster := map[int]string{}
	for i := 0; len(byMaster) < 3; i++ {
		ch := fmt.Sprint("room", i)
		owner := cl.SlotOwner(int(redis.Slot(names.Presence(ch)[0])))
		if _, ok := byMaster[owner]; !ok {
			byMaster[owner] = ch
		}
	}
	for _, ch := range byMaster {
		for i, s := range ins {
			s.Join(ch, Member{Client: fmt.Sprint(i, ".1"), User: "alice"})
			s.Join(ch, Member{Client: fmt.Sprint(i, ".2"), User: fmt.Sprint("user", i)})
		}
	}
	settle(t, ins[0], ins[1], ins[2])
	for master, ch := range byMaster {
		for _, s := range ins {
			if st := stats(t, s, ch); st != (Stats{Clients: 6, Users: 4}) {
				t.Errorf("%s (master %d): %+v", ch, master, st)
			}
			if ms := members(t, s, ch); len(ms) != 6 {
				t.Errorf("%s (master %d): %d members", ch, master, len(ms))
			}
		}
		for _, k := range names.Presence(ch) {
			if n, err := cl.Nodes()[master].Do("EXISTS", k); n != "1" {
				t.Errorf("%s not on its slot's owner %d: %s %v", k, master, n, err)
			}
		}
	}
}

// TestRedisRefusesTinyTTL: a TTL below MinTTL is an error from NewRedis,
// with no goroutine left behind, instead of a panic in the store's
// goroutine (TTL/3 == 0 for time.NewTicker) or members that expire as they
// join (a TTL under 1 ms is 0 in Redis's milliseconds). Zero still means
// the default and MinTTL itself is accepted.
func TestRedisRefusesTinyTTL(t *testing.T) {
	srv := redistest.StartStandalone(t)
	client := newClient(t, srv.Addr())
	for _, ttl := range []time.Duration{1, 2, 500 * time.Microsecond, MinTTL - 1} {
		r, err := NewRedis(RedisConfig{Client: client, TTL: ttl})
		if err == nil {
			r.Close()
			t.Fatalf("TTL %v: NewRedis accepted it", ttl)
		}
		if !strings.Contains(err.Error(), "below the minimum") {
			t.Errorf("TTL %v: error %q does not name the minimum", ttl, err)
		}
	}
	for _, ttl := range []time.Duration{0, MinTTL} {
		newRedis(t, client, "ok", func(c *RedisConfig) { c.TTL = ttl })
	}
}

// TestRedisReadsUnavailable: a read that fails on the way to Redis (Redis
// killed) is ErrUnavailable, which callers answer with "retry later"; an
// error reply from Redis (a key of the wrong type) is a plain failure.
func TestRedisReadsUnavailable(t *testing.T) {
	srv := redistest.StartStandalone(t)
	s := newRedis(t, newClient(t, srv.Addr()), "a", func(c *RedisConfig) { c.Timeout = time.Second })
	names := rediskeys.Layout{Prefix: rediskeys.DefaultPrefix, Partitions: rediskeys.DefaultPartitions}
	for _, k := range names.Presence("wrongtype") {
		if _, err := srv.Do("SET", k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := membersErr(s, "wrongtype"); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("Members of a channel whose keys are strings: %v, want an error reply, not ErrUnavailable", err)
	}
	if _, err := statsErr(s, "wrongtype"); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("Stats of a channel whose keys are strings: %v, want an error reply, not ErrUnavailable", err)
	}
	srv.Kill()
	if _, err := membersErr(s, "room"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Members with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := statsErr(s, "room"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Stats with Redis down: %v, want ErrUnavailable", err)
	}
}
