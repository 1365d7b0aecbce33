package gateway_test

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	redisbroker "github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// TestSlowSubscribersDoNotStallRedis: WebSocket subscribers that never read
// cannot back pressure into Redis: the gateway's pub/sub connections keep a
// near-empty Redis output buffer (Redis would drop them past its limit),
// are never reconnected, and the stalled clients are closed with 4008.
func TestSlowSubscribersDoNotStallRedis(t *testing.T) {
	rs := redistest.StartStandalone(t)
	b, err := redisbroker.New(redisbroker.Config{URL: rs.URL(), Node: "gw", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, func(c *gateway.Config) {
		c.Broker = b
		c.MaxQueueBytes = 256 << 10
	})
	addr := srv.Addr().String()
	const stalled = 20
	var conns []net.Conn
	for i := range stalled {
		c, err := dialIdle(addr, "/ws")
		if err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetReadBuffer(4096)
		conns = append(conns, c)
		mustWrite(t, c, string(maskedBinary(mp(t, map[string]any{"id": i + 1, "cmd": "subscribe", "channel": "firehose"}))))
	}
	defer closeAll(conns)
	pub := dialWS(t, addr, "/ws")
	waitUntil(t, 5*time.Second, func() bool { return srv.Hub().Subscribers("firehose") == stalled })
	time.Sleep(200 * time.Millisecond) // subscription confirmed on Redis

	payload := make([]byte, 4096)
	maxOmem := 0
	for i := range 2000 { // 8 MiB to each of 20 stalled sockets
		pub.send(binFrame(mp(t, map[string]any{"id": i + 1, "cmd": "publish", "channel": "firehose", "data": payload})))
		if _, err := pub.next(); err != nil {
			t.Fatalf("publish reply %d: %v", i, err)
		}
		if i%100 == 0 {
			maxOmem = max(maxOmem, pubsubOmem(t, rs))
		}
	}
	waitUntil(t, 10*time.Second, func() bool { return srv.Metrics().SlowConsumers.Load() == stalled })
	t.Logf("max Redis output buffer of the gateway's pub/sub connections: %d bytes; slow consumers closed: %d",
		maxOmem, srv.Metrics().SlowConsumers.Load())
	if maxOmem > 1<<20 {
		t.Fatalf("pub/sub output buffer reached %d bytes", maxOmem)
	}
	if n := b.Stats().Reconnects.Load(); n != 0 {
		t.Fatalf("pub/sub connections reconnected %d times", n)
	}
}

var omemRe = regexp.MustCompile(`omem=(\d+)`)

// pubsubOmem is the largest output buffer among pub/sub clients.
func pubsubOmem(t *testing.T, rs *redistest.Server) int {
	t.Helper()
	list, err := rs.Do("CLIENT", "LIST", "TYPE", "pubsub")
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	most := 0
	for _, m := range omemRe.FindAllStringSubmatch(list, -1) {
		n, _ := strconv.Atoi(m[1])
		most = max(most, n)
	}
	return most
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// maskedBinary frames payload as a masked binary client frame (zero key).
func maskedBinary(payload []byte) []byte {
	n := len(payload)
	var h []byte
	switch {
	case n <= 125:
		h = []byte{0x82, 0x80 | byte(n)}
	case n <= 0xFFFF:
		h = []byte{0x82, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		panic(fmt.Sprint("frame too large: ", n))
	}
	return append(append(h, 0, 0, 0, 0), payload...)
}
