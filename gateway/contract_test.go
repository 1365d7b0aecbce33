package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/rueidis"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/internal/testutil"
)

// The delivery contract: every acknowledged publication
// reaches every subscriber of its channel exactly once and in offset
// order, or the subscriber is told what it missed (an epoch push, a gap
// push). These tests hold three real gateways on one Redis to it through
// Redis faults, with publications from WebSocket clients, the HTTP API and
// a backend's FCALL.

const contractAPIKey = "contract-key"

// contractCluster is three gateways on one Redis, each with its API.
type contractCluster struct {
	redis *redistest.Server
	gws   []*gatewayProc
	apis  []string // API listener addresses, by gateway
}

func startContractCluster(t *testing.T, flags ...string) *contractCluster {
	t.Helper()
	c := &contractCluster{redis: redistest.StartStandalone(t)}
	for range 3 {
		api := testutil.FreeAddr(t)
		gw := redisGateway(t, c.redis.URL(), append([]string{"--api-listen", api, "--api-key", contractAPIKey,
			"--history-size", "1000"}, flags...)...)
		c.gws = append(c.gws, gw)
		c.apis = append(c.apis, api)
	}
	return c
}

// subEvent is one frame a contract subscriber received.
type subEvent struct {
	kind            string // message, epoch, gap
	epoch, previous string
	offset          uint64 // message; epoch: the last offset of the previous epoch
	from, to        uint64 // gap
	data            string
}

// contractSub is one subscriber, on one channel, on one gateway.
type contractSub struct {
	channel string
	conn    *websocket.Conn
	mu      sync.Mutex
	events  []subEvent
	start   subEvent // the subscribe reply's position
	closed  chan struct{}
}

func dialContractSub(t *testing.T, gw *gatewayProc, channel string) *contractSub {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+gw.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", gw.addr, err)
	}
	s := &contractSub{channel: channel, conn: conn, closed: make(chan struct{})}
	t.Cleanup(func() { conn.Close(); <-s.closed })
	writeMsgpack(t, conn, map[string]any{"id": 1, "cmd": "subscribe", "channel": channel})
	reply := readMsgpack(t, conn)
	if reply["type"] != "reply" || reply["error"] != nil {
		t.Fatalf("subscribe %s: %v", channel, reply)
	}
	s.start = subEvent{epoch: fmt.Sprint(reply["epoch"]), offset: toU(reply["offset"])}
	go s.read()
	return s
}

func (s *contractSub) read() {
	defer close(s.closed)
	for {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		var m map[string]any
		if msgpack.Unmarshal(b, &m) != nil {
			return
		}
		e := subEvent{kind: fmt.Sprint(m["type"])}
		switch e.kind {
		case "message":
			e.epoch, e.offset = fmt.Sprint(m["epoch"]), toU(m["offset"])
			d, _ := m["data"].([]byte)
			e.data = string(d)
		case "epoch":
			e.epoch, e.previous, e.offset = fmt.Sprint(m["epoch"]), fmt.Sprint(m["previous"]), toU(m["offset"])
		case "gap":
			e.from, e.to = toU(m["from"]), toU(m["to"])
		default:
			continue
		}
		s.mu.Lock()
		s.events = append(s.events, e)
		s.mu.Unlock()
	}
}

func (s *contractSub) snapshot() []subEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]subEvent(nil), s.events...)
}

func writeMsgpack(t *testing.T, c *websocket.Conn, m map[string]any) {
	t.Helper()
	b, err := msgpack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func readMsgpack(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	return m
}

// ack is one acknowledged publication.
type ack struct {
	channel, epoch, data string
	offset               uint64
}

// ackLog collects acknowledgements from every publisher.
type ackLog struct {
	mu   sync.Mutex
	acks []ack
}

func (l *ackLog) add(a ack) {
	l.mu.Lock()
	l.acks = append(l.acks, a)
	l.mu.Unlock()
}

func (l *ackLog) all() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...)
}

// publisher publishes data to channel until it is acknowledged (retrying
// with the same idempotency key, as a client should) or stop closes, and
// reports the acknowledgement.
type publisher func(ctx context.Context, channel, data string) (ack, error)

// clientPublisher publishes over a WebSocket connection to gw.
func clientPublisher(t *testing.T, gw *gatewayProc) publisher {
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+gw.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	var id uint32
	return func(ctx context.Context, channel, data string) (ack, error) {
		id++
		b, _ := msgpack.Marshal(map[string]any{"id": id, "cmd": "publish", "channel": channel, "data": []byte(data), "idempotency_key": data})
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
			return ack{}, err
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return ack{}, err
			}
			var m map[string]any
			if err := msgpack.Unmarshal(b, &m); err != nil {
				return ack{}, err
			}
			if m["type"] != "reply" || toU(m["id"]) != uint64(id) {
				continue
			}
			if e, ok := m["error"].(map[string]any); ok {
				return ack{}, fmt.Errorf("error %v: %v", e["code"], e["message"])
			}
			return ack{channel: channel, data: data, offset: toU(m["offset"]), epoch: fmt.Sprint(m["epoch"])}, nil
		}
	}
}

// apiPublisher publishes through the HTTP API at addr.
func apiPublisher(addr string) publisher {
	return func(ctx context.Context, channel, data string) (ack, error) {
		code, body, _, err := apiCall(ctx, addr, "publish", fmt.Sprintf(`{"channel":%q,"b64":%q,"idempotency_key":%q}`,
			channel, base64.StdEncoding.EncodeToString([]byte(data)), data))
		if err != nil {
			return ack{}, err
		}
		if code != 200 {
			return ack{}, fmt.Errorf("%d %s", code, body)
		}
		var r struct {
			Offset uint64
			Epoch  string
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return ack{}, fmt.Errorf("reply %s: %v", body, err)
		}
		return ack{channel: channel, data: data, offset: r.Offset, epoch: r.Epoch}, nil
	}
}

// fcallPublisher publishes as a backend does, with wsgate_publish.
func fcallPublisher(t *testing.T, redisAddr string) publisher {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}, DisableCache: true, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return func(ctx context.Context, channel, data string) (ack, error) {
		tag := fmt.Sprintf("wsgate:{%d}:", crc32.ChecksumIEEE([]byte(channel))%64)
		cmd := client.B().Fcall().Function("wsgate_publish").Numkeys(3).
			Key(tag+"m:"+channel, tag+"h:"+channel, tag+"i:"+channel+"|"+data).
			Arg(tag+"c:"+channel, channel, data, "backend", "", "86400000", "PUBLISH", "1000", "300000", "300000").Build()
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		arr, err := client.Do(ctx, cmd).ToArray()
		if err != nil {
			return ack{}, err
		}
		off, _ := arr[0].AsInt64()
		epoch, _ := arr[1].ToString()
		return ack{channel: channel, data: data, offset: uint64(off), epoch: epoch}, nil
	}
}

func apiCall(ctx context.Context, addr, method, body string) (int, string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/"+method, strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Authorization", "apikey "+contractAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header, nil
}

// runPublisher publishes to channels in turn until stop closes, retrying
// each publication with its key until it is acknowledged.
func runPublisher(name string, pub publisher, channels []string, every time.Duration, log *ackLog, stop <-chan struct{}, failures *atomic.Int64) {
	for seq := 0; ; seq++ {
		ch := channels[seq%len(channels)]
		data := fmt.Sprintf("%s-%d", name, seq)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := pub(context.Background(), ch, data)
			if err == nil {
				log.add(a)
				break
			}
			failures.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case <-stop:
			return
		case <-time.After(every):
		}
	}
}

// checkContract checks what every subscriber received against what was
// acknowledged: per epoch, offsets strictly increase (in order, no
// duplicate); every acknowledged publication was received — unless an
// epoch push or a gap push announced it lost. It returns the deliveries
// checked and the epoch pushes seen.
func checkContract(t *testing.T, subs []*contractSub, acks []ack) (delivered, epochPushes int) {
	t.Helper()
	byChannel := map[string][]ack{}
	for _, a := range acks {
		byChannel[a.channel] = append(byChannel[a.channel], a)
	}
	for i, s := range subs {
		got := map[string]string{} // epoch/offset → data
		last := map[string]uint64{s.start.epoch: s.start.offset}
		leftAt := map[string]uint64{} // epoch → its last offset sent, when an epoch push ended it
		gaps := map[string][][2]uint64{}
		epoch := s.start.epoch
		for _, e := range s.snapshot() {
			switch e.kind {
			case "epoch":
				epochPushes++
				if e.previous != epoch {
					t.Fatalf("subscriber %d (%s): epoch push from %s, but it was in %s", i, s.channel, e.previous, epoch)
				}
				leftAt[epoch] = e.offset
				epoch = e.epoch
			case "gap":
				gaps[epoch] = append(gaps[epoch], [2]uint64{e.from, e.to})
			case "message":
				if e.epoch != epoch {
					t.Fatalf("subscriber %d (%s): message of epoch %s without an epoch push (in %s)", i, s.channel, e.epoch, epoch)
				}
				if e.offset <= last[epoch] {
					t.Fatalf("subscriber %d (%s): offset %d after %d in epoch %s (duplicate or out of order)", i, s.channel, e.offset, last[epoch], epoch)
				}
				last[epoch] = e.offset
				got[epoch+"/"+fmt.Sprint(e.offset)] = e.data
				delivered++
			}
		}
		for _, a := range byChannel[s.channel] {
			if a.epoch == s.start.epoch && a.offset <= s.start.offset {
				continue // before the subscription
			}
			data, ok := got[a.epoch+"/"+fmt.Sprint(a.offset)]
			left, ended := leftAt[a.epoch]
			switch {
			case ok && data != a.data:
				t.Fatalf("subscriber %d (%s): %s/%d is %q, acknowledged as %q", i, s.channel, a.epoch, a.offset, data, a.data)
			case ok:
			case ended && a.offset > left: // announced by the epoch push
			case inGaps(gaps[a.epoch], a.offset): // announced by a gap push
			default:
				t.Fatalf("subscriber %d (%s): acknowledged %s/%d (%q) never arrived and was never announced lost (now in epoch %s)",
					i, s.channel, a.epoch, a.offset, a.data, epoch)
			}
		}
	}
	return delivered, epochPushes
}

func inGaps(gaps [][2]uint64, off uint64) bool {
	for _, g := range gaps {
		if off >= g[0] && off <= g[1] {
			return true
		}
	}
	return false
}

// TestRedisRestartKeepsTheContract: Redis is killed (-9) under publishing
// load and comes back empty, or from a snapshot that ends before the last
// publications: every subscriber gets an epoch push, then every publication
// acknowledged in the new epoch exactly once, in order; what the old epoch
// lost is announced.
func TestRedisRestartKeepsTheContract(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Redis and three gateways")
	}
	for _, kind := range []string{"empty", "snapshot"} {
		t.Run(kind, func(t *testing.T) { testRedisRestart(t, kind) })
	}
}

func testRedisRestart(t *testing.T, kind string) {
	c := startContractCluster(t)
	const channels, subsPerChannel = 10, 21
	var names []string
	for i := range channels {
		names = append(names, fmt.Sprint("room", i))
	}
	var subs []*contractSub
	for i := range channels * subsPerChannel {
		subs = append(subs, dialContractSub(t, c.gws[i%3], names[i%channels]))
	}
	acks := &ackLog{}
	stop := make(chan struct{})
	var failures atomic.Int64
	var wg sync.WaitGroup
	for name, pub := range map[string]publisher{
		"client": clientPublisher(t, c.gws[0]),
		"api":    apiPublisher(c.apis[1]),
		"fcall":  fcallPublisher(t, c.redis.Addr()),
	} {
		wg.Go(func() { runPublisher(name, pub, names, 20*time.Millisecond, acks, stop, &failures) })
	}
	time.Sleep(1500 * time.Millisecond)
	if kind == "snapshot" {
		if _, err := c.redis.Do("SAVE"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // publications the snapshot will not have
		c.redis.RestartFromSnapshot()      // kill -9, then start from the snapshot
	} else {
		c.redis.Kill()
		time.Sleep(500 * time.Millisecond)
		c.redis.Restart()
	}
	time.Sleep(2500 * time.Millisecond)
	close(stop)
	wg.Wait()
	all := acks.all()
	// Wait for the last acknowledged publications to arrive everywhere;
	// checkContract says precisely what is missing if they do not.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if allArrived(subs, all) {
			break
		}
	}
	delivered, pushes := checkContract(t, subs, all)
	if pushes != len(subs) {
		t.Fatalf("%d epoch pushes for %d subscribers", pushes, len(subs))
	}
	t.Logf("%s restart: %d publications acknowledged (%d attempts failed during the outage), %d deliveries checked, %d epoch pushes",
		kind, len(all), failures.Load(), delivered, pushes)
}

func allArrived(subs []*contractSub, acks []ack) bool {
	for _, s := range subs {
		evs := s.snapshot()
		if len(evs) == 0 || !hasAllOf(evs, acks, s.channel) {
			return false
		}
	}
	return true
}

// hasAllOf reports whether evs hold the newest epoch's acknowledged
// publications of channel (the test's end condition; checkContract judges).
func hasAllOf(evs []subEvent, acks []ack, channel string) bool {
	have := map[string]bool{}
	for _, e := range evs {
		if e.kind == "message" {
			have[e.epoch+"/"+fmt.Sprint(e.offset)] = true
		}
	}
	var last string
	for _, e := range evs {
		if e.kind == "message" || e.kind == "epoch" {
			last = e.epoch
		}
	}
	for _, a := range acks {
		if a.channel == channel && a.epoch == last && !have[a.epoch+"/"+fmt.Sprint(a.offset)] {
			return false
		}
	}
	return true
}

// clientPublish sends one publish with key on conn and returns its reply.
func clientPublish(t *testing.T, conn *websocket.Conn, id uint32, channel, data, key string) map[string]any {
	t.Helper()
	writeMsgpack(t, conn, map[string]any{"id": id, "cmd": "publish", "channel": channel, "data": []byte(data), "idempotency_key": key})
	for {
		m := readMsgpack(t, conn)
		if m["type"] == "reply" && toU(m["id"]) == uint64(id) {
			return m
		}
	}
}

func dialGorilla(t *testing.T, gw *gatewayProc) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+gw.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", gw.addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestRetryThroughAnotherInstance: a publish retried with its idempotency
// key through another instance — from a client or the API — yields one
// delivery and the original offset, even when a Redis stall cut the first
// attempt off with "outcome unknown".
func TestRetryThroughAnotherInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Redis and three gateways")
	}
	c := startContractCluster(t, "--redis-timeout", "1s")
	sub := dialContractSub(t, c.gws[2], "pay")
	a, b := dialGorilla(t, c.gws[0]), dialGorilla(t, c.gws[1])
	messages := func() []subEvent {
		var out []subEvent
		for _, e := range sub.snapshot() {
			if e.kind == "message" {
				out = append(out, e)
			}
		}
		return out
	}
	expectDelivered := func(n int, offset uint64) {
		t.Helper()
		waitUntil(t, 5*time.Second, func() bool { return len(messages()) >= n })
		time.Sleep(200 * time.Millisecond) // a second delivery would arrive now
		got := messages()
		if len(got) != n || got[n-1].offset != offset {
			t.Fatalf("deliveries %+v, want %d, the last at offset %d", got, n, offset)
		}
	}

	// Plain retries: client on a, client on b, then the API on the third.
	first := clientPublish(t, a, 1, "pay", "order 1", "k1")
	again := clientPublish(t, b, 1, "pay", "order 1", "k1")
	if first["error"] != nil || again["replayed"] != true || toU(again["offset"]) != toU(first["offset"]) || again["epoch"] != first["epoch"] {
		t.Fatalf("first %v, retry through another instance %v", first, again)
	}
	code, body, hdr, err := apiCall(context.Background(), c.apis[2], "publish", `{"channel":"pay","b64":"b3JkZXIgMQ==","idempotency_key":"k1"}`)
	if err != nil || code != 200 || hdr.Get("Idempotent-Replayed") != "true" || !strings.Contains(body, fmt.Sprintf(`"offset":%d`, toU(first["offset"]))) {
		t.Fatalf("API retry of a client's key: %d %s %v", code, body, err)
	}
	expectDelivered(1, toU(first["offset"]))

	// The first attempt cut off by a Redis stall: 113, then the retry.
	c.redis.Stop()
	stalled := clientPublish(t, a, 2, "pay", "order 2", "k2")
	c.redis.Cont()
	if e, _ := stalled["error"].(map[string]any); e == nil || toU(e["code"]) != 113 {
		t.Fatalf("publish during a stall: %v, want error 113", stalled)
	}
	retry := clientPublish(t, b, 2, "pay", "order 2", "k2")
	if retry["error"] != nil {
		t.Fatalf("retry after 113: %v", retry)
	}
	expectDelivered(2, toU(retry["offset"]))

	// The same through the API: 503 "outcome unknown", then the retry.
	c.redis.Stop()
	code, body, hdr, err = apiCall(context.Background(), c.apis[0], "publish", `{"channel":"pay","data":"order 3","idempotency_key":"k3"}`)
	c.redis.Cont()
	if err != nil || code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, `"outcome":"unknown"`) {
		t.Fatalf("API publish during a stall: %d %v %s %v", code, hdr, body, err)
	}
	code, body, _, err = apiCall(context.Background(), c.apis[1], "publish", `{"channel":"pay","data":"order 3","idempotency_key":"k3"}`)
	var r struct{ Offset uint64 }
	if err != nil || code != 200 || json.Unmarshal([]byte(body), &r) != nil {
		t.Fatalf("API retry after a stall: %d %s %v", code, body, err)
	}
	expectDelivered(3, r.Offset)
}

// TestAPIDuringOutageAndDrain: while Redis is down, and while an instance
// drains, the API answers 503 with Retry-After — never 500 — and a 30 s
// outage under load is logged in a handful of lines, not one per request.
func TestAPIDuringOutageAndDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Redis and three gateways through a 30 s outage")
	}
	c := startContractCluster(t, "--redis-timeout", "1s", "--drain-window", "2s")
	gw, api := c.gws[0], c.apis[0]
	for i := range 20 { // subscribers, so the outage has something to disturb
		dialContractSub(t, gw, fmt.Sprint("load", i%5))
	}
	type outcome struct{ ok, unavailable, other atomic.Int64 }
	var results outcome
	var bad atomic.Value
	load := func(stop <-chan struct{}, addr string) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code, body, hdr, err := apiCall(context.Background(), addr, "publish", fmt.Sprintf(`{"channel":"load%d","data":%d}`, i%5, i))
			switch {
			case err != nil: // the listener is gone (end of a drain)
			case code == 200:
				results.ok.Add(1)
			case code == 503 && hdr.Get("Retry-After") != "":
				results.unavailable.Add(1)
			default:
				results.other.Add(1)
				bad.Store(fmt.Sprintf("%d %s", code, body))
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { load(stop, api) })
	pub := clientPublisher(t, gw)
	wg.Go(func() {
		var failures atomic.Int64
		runPublisher("client", pub, []string{"load0", "load1"}, 20*time.Millisecond, &ackLog{}, stop, &failures)
	})

	time.Sleep(time.Second)
	logsBefore := strings.Count(gw.logs.String(), "\n")
	c.redis.Kill()
	time.Sleep(30 * time.Second)
	outageLines := strings.Count(gw.logs.String(), "\n") - logsBefore
	c.redis.Restart()
	waitUntil(t, 10*time.Second, func() bool {
		code, _, _, err := apiCall(context.Background(), api, "publish", `{"channel":"load0","data":0}`)
		return err == nil && code == 200
	})
	close(stop)
	wg.Wait()
	if results.other.Load() != 0 || results.unavailable.Load() == 0 {
		t.Fatalf("during the outage: %d ok, %d 503, %d other (last: %v)", results.ok.Load(), results.unavailable.Load(), results.other.Load(), bad.Load())
	}
	if outageLines >= 20 {
		t.Fatalf("%d log lines during a 30 s outage:\n%s", outageLines, gw.logs.String())
	}
	t.Logf("30 s outage: %d API calls answered 503, %d log lines", results.unavailable.Load(), outageLines)

	// Drain: SIGTERM while the API is busy.
	results = outcome{}
	stop = make(chan struct{})
	wg.Go(func() { load(stop, api) })
	time.Sleep(200 * time.Millisecond)
	gw.signal(syscall.SIGTERM)
	select {
	case <-gw.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not exit after its drain")
	}
	close(stop)
	wg.Wait()
	if results.other.Load() != 0 {
		t.Fatalf("during the drain: %d ok, %d 503, %d other (last: %v)", results.ok.Load(), results.unavailable.Load(), results.other.Load(), bad.Load())
	}
}
