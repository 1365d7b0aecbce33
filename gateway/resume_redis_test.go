package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/gateway"
	redisbroker "github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// startRedisGateway runs an in-process gateway on the Redis broker.
func startRedisGateway(t *testing.T, url string, mutate func(*gateway.Config)) *gateway.Server {
	t.Helper()
	return startServer(t, func(c *gateway.Config) {
		c.HistorySize = 1000
		if mutate != nil {
			mutate(c)
		}
		b, err := redisbroker.New(redisbroker.Config{URL: url, Node: fmt.Sprint("gw-", time.Now().UnixNano()),
			History: c.HistoryPolicy(), Log: slog.New(slog.DiscardHandler),
			ProbeInterval: 300 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c.Broker = b
	})
}

// TestResumeOnAnotherInstance: the subscriber comes back to a different
// gateway instance (one Redis) and still gets exactly what it missed, then
// live publications, while publishing continues.
func TestResumeOnAnotherInstance(t *testing.T) {
	rs := redistest.StartStandalone(t)
	a := startRedisGateway(t, rs.URL(), nil)
	b := startRedisGateway(t, rs.URL(), nil)
	testResume(t, a.Addr().String(), b.Addr().String())
}

// TestResumeAfterRedisRestart: history lost with Redis → the resume is
// answered recovered=false with the epoch reason.
func TestResumeAfterRedisRestart(t *testing.T) {
	rs := redistest.StartStandalone(t)
	a := startRedisGateway(t, rs.URL(), nil)
	c := &resumeClient{dialWS(t, a.Addr().String(), "/ws"), t}
	c.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "r"})
	epoch := fmt.Sprint(c.frameMap()["epoch"])
	c.cmd(map[string]any{"id": 2, "cmd": "publish", "channel": "r", "data": []byte("x")})
	for range 2 { // reply and message, in either order
		c.frameMap()
	}
	rs.Kill()
	rs.Restart()
	back := &resumeClient{dialWS(t, a.Addr().String(), "/ws"), t}
	back.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "r", "offset": 1, "epoch": epoch})
	r := back.frameMap()
	if r["recovered"] != false || r["reason"] != "epoch changed" {
		t.Fatalf("reply %v, want recovered=false for the epoch", r)
	}
}

// TestSlowConsumerResumes: a subscriber closed with 4008 resumes and
// misses nothing.
func TestSlowConsumerResumes(t *testing.T) {
	skipSlow(t)
	slowLimits := func(c *gateway.Config) {
		c.MaxQueueBytes = 256 << 10
		c.HistorySize = 5000
	}
	t.Run("redis", func(t *testing.T) {
		rs := redistest.StartStandalone(t)
		testSlowConsumerResumes(t, startRedisGateway(t, rs.URL(), slowLimits))
	})
	t.Run("memory", func(t *testing.T) { testSlowConsumerResumes(t, startServer(t, slowLimits)) })
}

func testSlowConsumerResumes(t *testing.T, a *gateway.Server) {
	addr := a.Addr().String()
	slow, err := dialIdle(addr, "/ws")
	if err != nil {
		t.Fatal(err)
	}
	slow.(*net.TCPConn).SetReadBuffer(4096)
	mustWrite(t, slow, string(maskedBinary(mp(t, map[string]any{"id": 1, "cmd": "subscribe", "channel": "s"}))))
	waitUntil(t, 5*time.Second, func() bool { return a.Hub().Subscribers("s") == 1 })
	time.Sleep(200 * time.Millisecond)
	pub := &resumeClient{dialWS(t, addr, "/ws"), t}
	// More than the kernel's socket buffers hold, so the queue overflows.
	const n = 3000
	payload := make([]byte, 4096)
	start := time.Now()
	for i := 1; i <= n; i++ {
		pub.cmd(map[string]any{"id": i, "cmd": "publish", "channel": "s", "data": payload})
		if _, err := pub.next(); err != nil {
			t.Fatalf("publish %d: no reply: %v", i, err)
		}
	}
	t.Logf("published %d in %v", n, time.Since(start))
	waitUntil(t, 10*time.Second, func() bool { return a.Metrics().SlowConsumers.Load() == 1 })
	// The client reads what reached it, then finds 4008 (or, when it
	// stayed stalled past the close linger, the closed connection). A big
	// buffer again, or loopback TCP crawls through a 4 KiB window.
	slow.(*net.TCPConn).SetReadBuffer(4 << 20)
	last, epoch, code := drainSubscriber(t, slow)
	if code != gateway.CloseSlowConsumer && code != 0 {
		t.Fatalf("close code %d, want 4008", code)
	}
	slow.Close()
	t.Logf("drained at offset %d after %v", last, time.Since(start))
	back := &resumeClient{dialWS(t, addr, "/ws"), t}
	// The reply follows a history read of ~12 MB: give a loaded host time.
	back.readTimeout = 30 * time.Second
	back.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "s", "offset": last, "epoch": epoch})
	if r := back.frameMap(); r["recovered"] != true {
		t.Fatalf("resume after 4008: %v", r)
	}
	t.Logf("resume reply after %v", time.Since(start))
	for want := last + 1; want <= n; want++ {
		if got := toU(back.frameMap()["offset"]); got != want {
			t.Fatalf("offset %d, want %d", got, want)
		}
	}
}

// drainSubscriber reads a raw subscriber until its close frame: the last
// message offset, the epoch (from the subscribe reply) and the close code.
func drainSubscriber(t *testing.T, c net.Conn) (last uint64, epoch string, code uint16) {
	t.Helper()
	wc := &wsConn{t: t, conn: c, br: bufio.NewReaderSize(c, 64<<10), readTimeout: 10 * time.Second}
	for {
		ev, err := wc.next()
		if err != nil {
			return last, epoch, 0 // closed without a close frame
		}
		if ev.op == opClose {
			code, _ = parseClose(ev.payload)
			return last, epoch, code
		}
		m := map[string]any{}
		if err := msgpack.Unmarshal(ev.payload, &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "reply" {
			epoch = fmt.Sprint(m["epoch"])
			continue
		}
		last = toU(m["offset"])
	}
}

// TestGapOnLiveDeliveryIsFilled: a publication the instance never receives
// on Pub/Sub (published to Redis, so it is in history, but not delivered —
// as when the broker drops a message) is filled from history: the
// subscriber sees every offset in order.
func TestGapOnLiveDeliveryIsFilled(t *testing.T) {
	rs := redistest.StartStandalone(t)
	a := startRedisGateway(t, rs.URL(), nil)
	c := &resumeClient{dialWS(t, a.Addr().String(), "/ws"), t}
	c.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "g"})
	c.frameMap()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tag := fmt.Sprintf("wsgate:{%d}:", crc32.ChecksumIEEE([]byte("g"))%64)
	publishVia := func(pubsub, data string) {
		cmd := client.B().Fcall().Function("wsgate_publish").Numkeys(2).Key(tag+"m:g", tag+"h:g").
			Arg(pubsub, "g", data, "test", "", "86400000", "PUBLISH", "1000", "300000").Build()
		if err := client.Do(context.Background(), cmd).Error(); err != nil {
			t.Fatal(err)
		}
	}
	publishVia(tag+"c:g", "1")
	publishVia("nobody-listens", "2") // dropped on the way: offset 2 only in history
	publishVia("nobody-listens", "3")
	publishVia(tag+"c:g", "4")
	for want := uint64(1); want <= 4; want++ {
		m := c.frameMap()
		if got := toU(m["offset"]); got != want || string(m["data"].([]byte)) != fmt.Sprint(want) {
			t.Fatalf("got %v, want offset %d", m, want)
		}
	}
	if st := a.Hub().Stats(); st.Gaps.Load() != 1 || st.GapsFilled.Load() != 2 {
		t.Fatalf("gaps %d filled %d", st.Gaps.Load(), st.GapsFilled.Load())
	}
}
