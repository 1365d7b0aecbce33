package gateway_test

import (
	"fmt"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// fcallCalls is how many FCALLs Redis has served (INFO commandstats).
func fcallCalls(t *testing.T, rs *redistest.Server) int64 {
	t.Helper()
	info, err := rs.Do("INFO", "commandstats")
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	m := regexp.MustCompile(`cmdstat_fcall:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestSubscribeToAFollowedChannelSkipsRedis: once an instance follows a
// channel, a new subscriber is answered with the position the instance
// already has — no FCALL — and the answer keeps the contract while
// publications stream in: the reply comes first, then exactly the
// offsets after it, in order.
func TestSubscribeToAFollowedChannelSkipsRedis(t *testing.T) {
	rs := redistest.StartStandalone(t)
	gw := redisGateway(t, rs.URL(), "--history-size", "1000")
	const channel = "hot"
	first := dialContractSub(t, gw, channel) // the instance's first: asks Redis

	pub := clientPublisher(t, gw)
	var acks ackLog
	var failures atomic.Int64
	for i := range 5 {
		a, err := pub(t.Context(), channel, fmt.Sprint("warm-", i))
		if err != nil {
			t.Fatal(err)
		}
		acks.add(a)
	}
	waitUntil(t, 10*time.Second, func() bool { return len(first.snapshot()) == 5 })

	// Quiet channel: the answer is the top, and Redis is not asked.
	before := fcallCalls(t, rs)
	var subs []*contractSub
	for range 20 {
		s := dialContractSub(t, gw, channel)
		if s.start.offset != 5 || s.start.epoch != acks.all()[4].epoch {
			t.Fatalf("subscribe answered %+v, want offset 5 of epoch %s", s.start, acks.all()[4].epoch)
		}
		subs = append(subs, s)
	}
	if n := fcallCalls(t, rs) - before; n != 0 {
		t.Fatalf("20 subscribes to a followed channel made %d FCALLs, want 0", n)
	}
	if n := gw.metric("wsgate_hub_positions_known_total"); n != 20 {
		t.Fatalf("wsgate_hub_positions_known_total %d, want 20", n)
	}

	// Publications streaming in: each subscriber gets exactly what came
	// after its answer (dialContractSub fails if a message precedes it).
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		runPublisher("live", pub, []string{channel}, time.Millisecond, &acks, stop, &failures)
	}()
	for range 30 {
		subs = append(subs, dialContractSub(t, gw, channel))
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
	all := acks.all()
	top := all[len(all)-1].offset
	for i, s := range subs {
		waitUntil(t, 10*time.Second, func() bool {
			evs := s.snapshot()
			return s.start.offset == top || len(evs) > 0 && evs[len(evs)-1].offset == top
		})
		for j, e := range s.snapshot() {
			if want := s.start.offset + 1 + uint64(j); e.kind != "message" || e.offset != want {
				t.Fatalf("subscriber %d answered at %d: event %d is %s %d, want message %d", i, s.start.offset, j, e.kind, e.offset, want)
			}
		}
	}
	checkContract(t, append(subs, first), all)
	if failures.Load() != 0 {
		t.Fatalf("%d publishes failed", failures.Load())
	}
}
