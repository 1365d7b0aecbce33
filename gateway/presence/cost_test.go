package presence

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// commandCalls runs f and returns how many times Redis executed each
// command meanwhile (INFO commandstats counts the commands a function runs
// as well as the FCALL itself).
func commandCalls(t testing.TB, srv *redistest.Server, f func()) map[string]int {
	t.Helper()
	if _, err := srv.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	f()
	info, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || connectionSetup(name) {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		out[name] = n
	}
	return out
}

// connectionSetup reports commands that are not the store's work: ours
// (CONFIG RESETSTAT) and a client's connection handshake, which rueidis may
// do at any moment for a new pooled connection.
func connectionSetup(name string) bool {
	for _, p := range []string{"config", "hello", "client", "select", "ping", "auth"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// TestRedisStatsCost: Stats is one FCALL whose commands do not depend on
// the number of members — the same commands at 10 and 10,000 members.
func TestRedisStatsCost(t *testing.T) {
	srv := redistest.StartStandalone(t)
	s := newRedis(t, newClient(t, srv.Addr()), "a", func(c *RedisConfig) { c.TTL = time.Minute }) // no refresh during the test
	var calls []map[string]int
	for _, n := range []int{10, 10_000} {
		ch := fmt.Sprint("room", n)
		for i := range n {
			s.Join(ch, Member{Client: fmt.Sprint("c", i), User: fmt.Sprint("u", i%1000), Info: []byte("some info")})
		}
		settle(t, s)
		var st Stats
		c := commandCalls(t, srv, func() { st = stats(t, s, ch) })
		if want := (Stats{Clients: n, Users: min(n, 1000)}); st != want {
			t.Fatalf("stats %+v, want %+v", st, want)
		}
		t.Logf("%6d members: Stats ran %v", n, c)
		if c["fcall"] != 1 {
			t.Fatalf("Stats made %d FCALLs, want 1", c["fcall"])
		}
		calls = append(calls, c)
	}
	if fmt.Sprint(calls[0]) != fmt.Sprint(calls[1]) {
		t.Fatalf("Stats work grows with members: %v at 10, %v at 10,000", calls[0], calls[1])
	}
}

// BenchmarkRedisStats: the time of one Stats round trip at growing channel
// sizes stays flat.
func BenchmarkRedisStats(b *testing.B) {
	srv := redistest.StartStandalone(b)
	s := newRedis(b, newClient(b, srv.Addr()), "a", func(c *RedisConfig) { c.TTL = time.Minute })
	for _, n := range []int{10, 1_000, 10_000, 100_000} {
		ch := fmt.Sprint("room", n)
		for i := range n {
			s.Join(ch, Member{Client: fmt.Sprint("c", i), User: fmt.Sprint("u", i%1000)})
			if i%10_000 == 0 {
				settle(b, s) // stay under the queue's bound
			}
		}
		settle(b, s)
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			for b.Loop() {
				stats(b, s, ch)
			}
		})
	}
}

// BenchmarkRedisJoin: joins per second through one store's pipeline
// (queue, batching into FCALLs of up to maxArgs members, DoMulti), for
// clients spread over many channels or crowding one.
func BenchmarkRedisJoin(b *testing.B) {
	srv := redistest.StartStandalone(b)
	s := newRedis(b, newClient(b, srv.Addr()), "a", func(c *RedisConfig) { c.TTL = time.Minute })
	for _, channels := range []int{1, 1000} {
		b.Run(fmt.Sprint("channels=", channels), func(b *testing.B) {
			i := 0
			for b.Loop() {
				s.Join(fmt.Sprint("room", i%channels), Member{Client: fmt.Sprint("c", i), User: fmt.Sprint("u", i%1000)})
				if i++; i%10_000 == 0 {
					settle(b, s)
				}
			}
			settle(b, s)
			if d := s.Counters().Dropped.Load(); d != 0 {
				b.Fatalf("%d joins dropped", d)
			}
		})
	}
}

// TestRedisRefreshCost: refreshing members that are all still there costs a
// few commands per FCALL of up to maxArgs members, not per member.
func TestRedisRefreshCost(t *testing.T) {
	const ttl, n = 600 * time.Millisecond, 10_000
	srv := redistest.StartStandalone(t)
	s := newRedis(t, newClient(t, srv.Addr()), "a", func(c *RedisConfig) { c.TTL = ttl })
	for i := range n {
		s.Join("big", Member{Client: fmt.Sprint("c", i), User: fmt.Sprint("u", i%1000)})
	}
	settle(t, s)
	c := commandCalls(t, srv, func() { time.Sleep(ttl) }) // about three passes, at least one on a loaded machine
	total := 0
	for _, v := range c {
		total += v
	}
	passes := float64(c["fcall"]) / float64((n+maxArgs-1)/maxArgs)
	t.Logf("%.1f refresh passes over %d members: %d commands %v", passes, n, total, c)
	if c["fcall"] == 0 || c["hget"] != 0 || total > 10*c["fcall"] {
		t.Fatalf("refresh ran %v", c)
	}
	if st := stats(t, s, "big"); st != (Stats{Clients: n, Users: 1000}) {
		t.Fatalf("stats after refreshes: %+v", st)
	}
}
