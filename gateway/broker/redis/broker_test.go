package redis_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/brokertest"
	"github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("time.Sleep")) // redistest's reapers may still be sleeping
}

func startBroker(t *testing.T, url, node string, mutate func(*redis.Config)) (*redis.Broker, *brokertest.Recorder) {
	t.Helper()
	// Probes often, with a timeout a loaded test machine's round trip
	// stays under (a false "deaf" reconnects, and the recorder does not
	// repair what that loses).
	cfg := redis.Config{URL: url, Node: node, ProbeInterval: 300 * time.Millisecond, ProbeTimeout: time.Second, Timeout: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	rec := brokertest.NewRecorder()
	if err := b.Start(rec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, rec
}

// position, publish and waitFor shorten the brokertest helpers.
func position(t *testing.T, b broker.Broker, ch string) broker.Position {
	t.Helper()
	return brokertest.Position(t, b, ch)
}

func publish(b broker.Broker, ch string, data string) (broker.Position, error) {
	res, err := brokertest.Publish(b, ch, data, broker.PublishOptions{})
	return res.Position, err
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	brokertest.WaitFor(t, what, d, cond)
}

// TestTwoInstancesExactlyOnce: publications from either instance reach both
// (the publisher included) exactly once, with offsets 1..n in order and one
// epoch; an unsubscribed instance receives nothing.
func TestTwoInstancesExactlyOnce(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, recA := startBroker(t, srv.URL(), "a", nil)
	b, recB := startBroker(t, srv.URL(), "b", nil)
	c, recC := startBroker(t, srv.URL(), "c", nil) // never subscribes
	a.Subscribe("news")
	b.Subscribe("news")
	pa, pb := position(t, a, "news"), position(t, b, "news")
	if pa != pb || pa.Offset != 0 || pa.Epoch == "" {
		t.Fatalf("positions %v and %v", pa, pb)
	}
	for i := 1; i <= 100; i++ {
		from := broker.Broker(a)
		if i%2 == 0 {
			from = b
		}
		if i%5 == 0 {
			from = c
		}
		pos, err := publish(from, "news", fmt.Sprint(i))
		if err != nil || pos.Offset != uint64(i) || pos.Epoch != pa.Epoch {
			t.Fatalf("publish %d: %v %v", i, pos, err)
		}
	}
	for _, rec := range []*brokertest.Recorder{recA, recB} {
		waitFor(t, "100 publications", 5*time.Second, func() bool { return rec.Count("news") >= 100 })
		time.Sleep(100 * time.Millisecond) // a duplicate would arrive now
		offs := rec.Offsets("news")
		if len(offs) != 100 {
			t.Fatalf("received %d publications, want 100", len(offs))
		}
		for i, off := range offs {
			if off != uint64(i+1) {
				t.Fatalf("publication %d has offset %d", i, off)
			}
		}
		if p := rec.Got("news")[41]; string(p.Data) != "42" || string(p.Epoch) != pa.Epoch {
			t.Fatalf("publication 42: %+v", p)
		}
	}
	if recC.Count("news") != 0 {
		t.Fatalf("an instance without subscribers received %d", recC.Count("news"))
	}
	// Last subscriber gone: the instance stops receiving.
	a.Unsubscribe("news")
	waitFor(t, "unsubscribe", 5*time.Second, func() bool {
		n, _ := srv.Do("PUBSUB", "NUMSUB", pubsubChannel("news"))
		return strings.HasSuffix(strings.TrimSpace(n), "1")
	})
	publish(c, "news", "after")
	waitFor(t, "b receives", 5*time.Second, func() bool { return recB.Count("news") == 101 })
	time.Sleep(100 * time.Millisecond)
	if recA.Count("news") != 100 {
		t.Fatalf("unsubscribed instance received %d", recA.Count("news"))
	}
}

func pubsubChannel(ch string) string {
	return fmt.Sprintf("wsgate:{%d}:c:%s", crc32.ChecksumIEEE([]byte(ch))%64, ch)
}

func historyKey(ch string) string {
	return fmt.Sprintf("wsgate:{%d}:h:%s", crc32.ChecksumIEEE([]byte(ch))%64, ch)
}

func metaKey(ch string) string {
	return fmt.Sprintf("wsgate:{%d}:m:%s", crc32.ChecksumIEEE([]byte(ch))%64, ch)
}

// TestExternalPublisher: a backend that knows only Redis publishes with the
// documented FCALL and every subscribed instance delivers it, with offsets
// shared with the gateways' own publications.
func TestExternalPublisher(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, recA := startBroker(t, srv.URL(), "a", nil)
	a.Subscribe("orders")
	position(t, a, "orders")
	publish(a, "orders", "from gateway")
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// The documented command (README, "Publishing from a backend").
	cmd := client.B().Fcall().Function("wsgate_publish").Numkeys(2).Key(metaKey("orders"), historyKey("orders")).
		Arg(pubsubChannel("orders"), "orders", "from backend", "billing-service", "", "86400000", "PUBLISH", "100", "300000").Build()
	arr, err := client.Do(context.Background(), cmd).ToArray()
	if err != nil {
		t.Fatalf("FCALL: %v", err)
	}
	if off, _ := arr[0].AsInt64(); off != 2 {
		t.Fatalf("backend publication got offset %d, want 2", off)
	}
	waitFor(t, "both publications", 5*time.Second, func() bool { return recA.Count("orders") == 2 })
	p := recA.Got("orders")[1]
	if string(p.Data) != "from backend" || p.Offset != 2 || string(p.Node) != "billing-service" || p.Time == 0 {
		t.Fatalf("backend publication arrived as %+v", p)
	}
}

// TestResubscribeAfterRestart: Redis killed and restarted under publishing
// load: every channel is subscribed again and delivery resumes on all of
// them within 5 s; the reconnect (the gap) is counted; the package's goleak
// check shows nothing leaked.
func TestResubscribeAfterRestart(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", nil)
	const channels = 200
	for i := range channels {
		a.Subscribe(fmt.Sprint("ch", i))
	}
	waitFor(t, "ready", 5*time.Second, a.Ready)
	// Load: publications keep coming on every channel through the restart.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a.Publish(fmt.Sprint("ch", i%channels), []byte("load"), broker.PublishOptions{}, func(broker.PublishResult, error) {})
			if i%channels == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	defer wg.Wait()
	defer close(stop)
	srv.Kill()
	waitFor(t, "not ready", 5*time.Second, func() bool { return !a.Ready() })
	srv.Restart()
	start := time.Now()
	before := make([]int, channels)
	for i := range channels {
		before[i] = rec.Count(fmt.Sprint("ch", i))
	}
	waitFor(t, "every channel delivering again", 5*time.Second, func() bool {
		for i := range channels {
			if rec.Count(fmt.Sprint("ch", i)) <= before[i] {
				return false
			}
		}
		return true
	})
	t.Logf("all %d channels delivering %v after restart; reconnects %d", channels, time.Since(start).Round(time.Millisecond), a.Stats().Reconnects.Load())
	if a.Stats().Reconnects.Load() == 0 {
		t.Fatal("reconnect not counted")
	}
}

// TestDeafConnections: a pub/sub connection killed by CLIENT KILL, and a
// Redis paused with SIGSTOP, are both noticed and healed.
func TestDeafConnections(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", func(c *redis.Config) { c.PubSubShards = 2 })
	a.Subscribe("x")
	position(t, a, "x")
	check := func(what string) {
		t.Helper()
		n := rec.Count("x")
		waitFor(t, what, 5*time.Second, func() bool {
			publish(a, "x", what)
			return rec.Count("x") > n
		})
	}
	check("before")
	before := a.Stats().Reconnects.Load()
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatalf("CLIENT KILL: %v", err)
	}
	check("after CLIENT KILL")
	if a.Stats().Reconnects.Load() == before {
		t.Fatal("killed pub/sub connection not noticed")
	}
	// Both connections may still be reconnecting from the kill; let them
	// settle so the counts below are the pause's alone.
	time.Sleep(time.Second)
	deaf, after := a.Stats().DeafDetected.Load(), a.Stats().Reconnects.Load()
	srv.Stop()
	// Silence is noticed at the first tick a probe interval after the last
	// message (≤ 600 ms), and the probe times out 1 s later.
	time.Sleep(2500 * time.Millisecond)
	srv.Cont()
	check("after SIGSTOP/SIGCONT")
	if a.Stats().DeafDetected.Load() == deaf || a.Stats().Reconnects.Load() == after {
		t.Fatalf("paused Redis not noticed: deaf %d → %d, reconnects %d → %d",
			deaf, a.Stats().DeafDetected.Load(), after, a.Stats().Reconnects.Load())
	}
}

// TestFullHubCountsDrops: a full hub makes the reader wait, then drop
// (both counted); it never blocks the reader for longer than the bound.
func TestFullHubCountsDrops(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", func(c *redis.Config) { c.MaxBackpressure = 50 * time.Millisecond })
	a.Subscribe("x")
	position(t, a, "x")
	rec.SetFull(true)
	for range 10 {
		publish(a, "x", "dropped")
	}
	waitFor(t, "drops counted", 5*time.Second, func() bool { return a.Stats().Dropped.Load() == 10 })
	if n := a.Stats().Backpressure.Load(); n != 10 {
		t.Fatalf("waited %d times, want 10", n)
	}
	// Nothing need follow the last drop to reveal it: the broker asks for
	// a resync itself.
	waitFor(t, "a resync for the drops", 5*time.Second, func() bool { return rec.Resyncs("x") >= 1 })
	rec.SetFull(false)
	publish(a, "x", "kept")
	waitFor(t, "delivery after drops", 5*time.Second, func() bool { return rec.Count("x") == 1 })
}

// TestClusterShardedPubSub: on a 3-master cluster, channels spread over all
// masters, each instance holds one pub/sub connection per master (not per
// channel), every publication arrives exactly once, and a slot migration
// moves the channel's subscription to the new owner, where it is resynced
// (what was published during the move reached no subscription) and
// delivers again.
func TestClusterShardedPubSub(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	a, recA := startBroker(t, cl.URL(), "a", nil)
	b, recB := startBroker(t, cl.URL(), "b", nil)
	const channels = 60
	owners := map[int]int{}
	for i := range channels {
		ch := fmt.Sprint("room", i)
		a.Subscribe(ch)
		b.Subscribe(ch)
		owners[cl.SlotOwner(int(redis.Slot(pubsubChannel(ch))))]++
	}
	if len(owners) != 3 {
		t.Fatalf("channels cover %d masters, want 3: %v", len(owners), owners)
	}
	for i := range channels {
		position(t, a, fmt.Sprint("room", i))
		position(t, b, fmt.Sprint("room", i))
	}
	for i, node := range cl.Nodes() {
		list, err := node.Do("CLIENT", "LIST", "TYPE", "pubsub")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(list, "id="); n != 2 { // one per instance
			t.Fatalf("master %d has %d pub/sub connections, want 2 (one per instance):\n%s", i, n, list)
		}
	}
	for i := range channels {
		for j := range 3 {
			if _, err := publish(a, fmt.Sprint("room", i), fmt.Sprint(j)); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	for _, rec := range []*brokertest.Recorder{recA, recB} {
		waitFor(t, "every publication", 10*time.Second, func() bool {
			for i := range channels {
				if rec.Count(fmt.Sprint("room", i)) < 3 {
					return false
				}
			}
			return true
		})
	}
	// Move room0's slot to another master: delivery continues.
	s := int(redis.Slot(pubsubChannel("room0")))
	to := (cl.SlotOwner(s) + 1) % 3
	if err := cl.MigrateSlot(s, to); err != nil {
		t.Fatalf("migrate slot %d: %v", s, err)
	}
	for _, rec := range []*brokertest.Recorder{recA, recB} {
		waitFor(t, "room0 resynced on its new owner", 10*time.Second, func() bool { return rec.Resyncs("room0") >= 1 })
	}
	if _, err := publish(a, "room0", "after move"); err != nil {
		t.Fatalf("publish after the move: %v", err)
	}
	for _, rec := range []*brokertest.Recorder{recA, recB} {
		waitFor(t, "delivery after the slot moved", 10*time.Second, func() bool { return rec.Count("room0") == 4 })
	}
}

// TestPythonPublisher runs the README's Python example (python3-redis).
func TestPythonPublisher(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", nil)
	a.Subscribe("alerts")
	position(t, a, "alerts")
	out, err := exec.Command("/usr/bin/python3", "testdata/publish.py", srv.URL(), "alerts", "disk full", "py-backend").CombinedOutput()
	if err != nil {
		t.Fatalf("publish.py: %v\n%s (install python3-redis)", err, out)
	}
	if !strings.HasPrefix(string(out), "1 ") {
		t.Fatalf("publish.py printed %q, want offset 1", out)
	}
	waitFor(t, "the backend's publication", 5*time.Second, func() bool { return rec.Count("alerts") == 1 })
	if p := rec.Got("alerts")[0]; string(p.Data) != "disk full" || string(p.Node) != "py-backend" {
		t.Fatalf("got %+v", p)
	}
	// With an idempotency key: published once, the repeat replayed.
	for i, want := range []string{"2 ", "2 "} {
		out, err := exec.Command("/usr/bin/python3", "testdata/publish.py", srv.URL(), "alerts", "disk full again", "py-backend", "alert-9").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), want) || strings.Contains(string(out), "replayed") != (i == 1) {
			t.Fatalf("publish.py with a key, attempt %d: %q %v", i+1, out, err)
		}
	}
	waitFor(t, "the keyed publication", 5*time.Second, func() bool { return rec.Count("alerts") == 2 })
	time.Sleep(100 * time.Millisecond)
	if n := rec.Count("alerts"); n != 2 {
		t.Fatalf("%d publications, want 2", n)
	}
}

func partition(ch string) uint32 { return crc32.ChecksumIEEE([]byte(ch)) % 64 }

// TestBackpressureAbsorbsABurst: a hub that is full for less than the
// bound loses nothing: the reader waits, Redis buffers the rest.
func TestBackpressureAbsorbsABurst(t *testing.T) {
	a := burstWhileFull(t, nil, 100, 300*time.Millisecond)
	if a.Stats().Dropped.Load() != 0 || a.Stats().Backpressure.Load() == 0 {
		t.Fatalf("dropped %d, waited %d times", a.Stats().Dropped.Load(), a.Stats().Backpressure.Load())
	}
}

// TestBackpressureOutlastsAProbe: a hub full for longer than a probe
// interval plus its timeout (300 ms, 1 s) holds the reader. A reader
// holding a publication is not idle, so its connection is neither probed
// nor taken for deaf: it is kept (no reconnect, whose lost buffer would
// have to be repaired).
func TestBackpressureOutlastsAProbe(t *testing.T) {
	a := burstWhileFull(t, func(c *redis.Config) { c.MaxBackpressure = 10 * time.Second }, 20, 2*time.Second)
	st := a.Stats()
	if st.DeafDetected.Load() != 0 || st.Reconnects.Load() != 0 || st.Dropped.Load() != 0 {
		t.Fatalf("deaf %d, reconnects %d, dropped %d: a busy reader was taken for a deaf connection",
			st.DeafDetected.Load(), st.Reconnects.Load(), st.Dropped.Load())
	}
}

// burstWhileFull publishes n while the hub is full for hold, and checks
// that all n then arrive once, in order.
func burstWhileFull(t *testing.T, mutate func(*redis.Config), n int, hold time.Duration) *redis.Broker {
	t.Helper()
	srv := redistest.StartStandalone(t)
	a, rec := startBroker(t, srv.URL(), "a", mutate)
	a.Subscribe("x")
	position(t, a, "x")
	rec.SetFull(true)
	for i := range n {
		publish(a, "x", fmt.Sprint(i))
	}
	time.Sleep(hold)
	rec.SetFull(false)
	waitFor(t, "every publication", 10*time.Second, func() bool { return rec.Count("x") == n })
	for i, off := range rec.Offsets("x") {
		if off != uint64(i+1) {
			t.Fatalf("publication %d has offset %d", i, off)
		}
	}
	return a
}

// TestHistoryUnavailable: a history read that fails on the way to Redis
// (Redis killed) is broker.ErrUnavailable, which callers answer with
// "retry later"; an error reply from Redis (a key of the wrong type) is a
// plain failure.
func TestHistoryUnavailable(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, _ := startBroker(t, srv.URL(), "a", func(c *redis.Config) { c.Timeout = time.Second })
	if _, err := srv.Do("SET", metaKey("wrongtype"), "x"); err != nil {
		t.Fatal(err)
	}
	if err := historyErr(a, "wrongtype"); err == nil || errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("history of a channel whose meta key is a string: %v, want an error reply, not ErrUnavailable", err)
	}
	srv.Kill()
	if err := historyErr(a, "c"); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("history with Redis down: %v, want broker.ErrUnavailable", err)
	}
}

func historyErr(b broker.Broker, ch string) error {
	c := make(chan error, 1)
	b.History(ch, broker.HistoryQuery{}, func(_ broker.HistoryResult, err error) { c <- err })
	return <-c
}
