package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// The multi-instance tests run several real wsgate processes against one
// Redis (or one Redis Cluster), as deployed behind a load balancer: clients
// on different instances must see each other's publications exactly once
// and in order, a backend publishing straight into Redis must reach all of
// them, presence must be one view across instances, and each instance must
// hold exactly the pub/sub connections the README promises.

// redisGateway starts a wsgate process on the Redis broker and waits until
// /readyz says every pub/sub connection is subscribed: startGateway only
// waits for /metrics, and a test that subscribes or counts Redis clients
// before that would race the broker's start.
func redisGateway(t *testing.T, url string, flags ...string) *gatewayProc {
	t.Helper()
	p := startGateway(t, append([]string{"--broker", "redis", "--redis-url", url}, flags...)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, err := p.status("/readyz")
		if err == nil && code == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgate %s not ready after 10s (last: %d %v)", p.addr, code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// status is the HTTP status of a debug-listener path (get only returns
// bodies, and /readyz answers 503 with a body).
func (p *gatewayProc) status(path string) (int, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.debug + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// metricNoFatal reads a metric without touching t, for goroutines other
// than the test's (t.Fatal must not be called there).
func (p *gatewayProc) metricNoFatal(name string) (int64, bool) {
	body, err := p.get("/metrics")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64) // the exposition format writes 1e+06
			return int64(n), err == nil
		}
	}
	return 0, false
}

// pubsubClientPorts lists the client-side TCP ports of the Redis server's
// connections in pub/sub mode (CLIENT LIST TYPE pubsub, field addr=).
func pubsubClientPorts(t *testing.T, rs *redistest.Server) []int {
	t.Helper()
	list, err := rs.Do("CLIENT", "LIST", "TYPE", "pubsub")
	if err != nil {
		t.Fatalf("CLIENT LIST TYPE pubsub on %s: %v", rs.Addr(), err)
	}
	var ports []int
	for _, line := range strings.Split(list, "\n") {
		for _, f := range strings.Fields(line) {
			if a, ok := strings.CutPrefix(f, "addr="); ok {
				i := strings.LastIndexByte(a, ':')
				n, err := strconv.Atoi(a[i+1:])
				if err != nil {
					t.Fatalf("CLIENT LIST: bad addr in %q", line)
				}
				ports = append(ports, n)
			}
		}
	}
	return ports
}

// localPorts is the set of local TCP ports of the sockets process pid holds
// open: its socket fds' inodes matched against /proc/net/tcp{,6}. It says
// which instance a Redis client connection belongs to, so the tests count
// connections per instance rather than only in total.
func localPorts(t *testing.T, pid int) map[int]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read fds of %d: %v", pid, err)
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || !inodes[fs[9]] {
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			if port, err := strconv.ParseUint(fs[1][i+1:], 16, 16); err == nil {
				ports[int(port)] = true
			}
		}
		f.Close()
	}
	return ports
}

// pubsubPerInstance counts rs's pub/sub connections by the gateway process
// that owns them; others counts connections owned by none of them.
func pubsubPerInstance(t *testing.T, rs *redistest.Server, gws []*gatewayProc) (per []int, others int) {
	t.Helper()
	owned := make([]map[int]bool, len(gws))
	for i, p := range gws {
		owned[i] = localPorts(t, p.cmd.Process.Pid)
	}
	per = make([]int, len(gws))
next:
	for _, port := range pubsubClientPorts(t, rs) {
		for i := range gws {
			if owned[i][port] {
				per[i]++
				continue next
			}
		}
		others++
	}
	return per, others
}

// requirePubsubConns waits (briefly: /readyz already said every connection
// is subscribed, but CLIENT LIST and /proc are read separately) until rs
// shows exactly want pub/sub connections from every instance and none from
// anyone else.
func requirePubsubConns(t *testing.T, rs *redistest.Server, gws []*gatewayProc, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		per, others := pubsubPerInstance(t, rs, gws)
		good := others == 0
		for _, n := range per {
			good = good && n == want
		}
		if good {
			t.Logf("redis %s: pub/sub connections per instance %v", rs.Addr(), per)
			return
		}
		if time.Now().After(deadline) {
			list, _ := rs.Do("CLIENT", "LIST", "TYPE", "pubsub")
			t.Fatalf("redis %s: pub/sub connections per instance %v (+%d unattributed), want %d each; CLIENT LIST:\n%s",
				rs.Addr(), per, others, want, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireNoRedisTrouble fails t if an instance reconnected, dropped, or
// failed to publish: any of them would make a clean verdict a lucky one.
func requireNoRedisTrouble(t *testing.T, gws []*gatewayProc) {
	t.Helper()
	for i, p := range gws {
		for _, m := range []string{"wsgate_redis_reconnects_total", "wsgate_redis_dropped_total",
			"wsgate_redis_undecodable_total", "wsgate_redis_publish_errors_total", "wsgate_hub_dropped_total"} {
			if n := p.metric(m); n != 0 {
				t.Errorf("instance %d: %s = %d", i, m, n)
			}
		}
	}
}

func addrsOf(gws []*gatewayProc) string {
	a := make([]string, len(gws))
	for i, p := range gws {
		a[i] = p.addr
	}
	return strings.Join(a, ",")
}

// publishScript is the backend example from the README, run by Debian's
// python3 with python3-redis (pythonInterp, from interop_test.go).
var publishScript = filepath.Join("broker", "redis", "testdata", "publish.py")

// extPublished is what one run of publish.py reported.
type extPublished struct {
	offset uint64
	epoch  string
	err    error
	done   time.Time
}

// publishExternally runs publish.py once per payload, in order (each waits
// for the previous, so Redis assigns offsets in payload order). It must
// not call t: it runs beside the test goroutine.
func publishExternally(ctx context.Context, url, channel string, payloads []string) []extPublished {
	out := make([]extPublished, len(payloads))
	for i, data := range payloads {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cmd := exec.CommandContext(cctx, pythonInterp, publishScript, url, channel, data, "multiinstance-test")
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
		b, err := cmd.CombinedOutput()
		cancel()
		out[i].done = time.Now()
		if err != nil {
			out[i].err = fmt.Errorf("publish.py %s: %v\n%s", data, err, b)
			continue
		}
		if _, err := fmt.Sscan(string(b), &out[i].offset, &out[i].epoch); err != nil {
			out[i].err = fmt.Errorf("publish.py %s: output %q: %v", data, b, err)
		}
	}
	return out
}

// requirePythonRedis fails t with the apt package to install unless the
// Debian python3 can import redis (requirePython's package map lacks it).
func requirePythonRedis(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(pythonInterp, "-c", "import redis").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import redis (apt-get install -y python3-redis): %v\n%s", pythonInterp, err, out)
	}
}

// subscribeOK subscribes c and fails t on an error reply.
func subscribeOK(t *testing.T, c *resumeClient, id int, channel string) map[string]any {
	t.Helper()
	c.cmd(map[string]any{"id": id, "cmd": "subscribe", "channel": channel})
	r := c.frameMap()
	if r["type"] != "reply" || toU(r["id"]) != uint64(id) || r["error"] != nil {
		t.Fatalf("subscribe %s: %v", channel, r)
	}
	return r
}

// TestThreeInstancesOneRedis: three instances on one standalone Redis. 3,000
// subscribers of 3 channels and 9 publishers are spread round-robin over
// the instances, so every publication crosses instances through Redis;
// meanwhile a backend (publish.py) publishes 20 messages on ext:feed, which
// one plain subscriber per instance must receive exactly once, in order.
// Each instance holds exactly --redis-pubsub-shards (4) pub/sub
// connections, before and after the load.
func TestThreeInstancesOneRedis(t *testing.T) {
	requirePythonRedis(t)
	rs := redistest.StartStandalone(t)
	gws := make([]*gatewayProc, 3)
	for i := range gws {
		// The ext:feed subscribers are read only at the end, after twenty
		// publish.py processes (30 s on a loaded host): no heartbeat may
		// close them before that.
		gws[i] = redisGateway(t, rs.URL(), "--ping-interval", "10m")
	}
	requirePubsubConns(t, rs, gws, 4)

	const extChannel, extMessages = "ext:feed", 20
	ext := make([]*resumeClient, len(gws))
	for i, p := range gws {
		ext[i] = &resumeClient{dialWS(t, p.addr, "/ws"), t}
		// The reply comes once Redis confirmed the subscription, so nothing
		// published afterwards can be missed.
		if r := subscribeOK(t, ext[i], 1, extChannel); toU(r["offset"]) != 0 {
			t.Fatalf("instance %d: %s starts at offset %v, want 0 (fresh Redis)", i, extChannel, r["offset"])
		}
	}
	payloads := make([]string, extMessages)
	for i := range payloads {
		payloads[i] = fmt.Sprintf("ext-%02d", i+1)
	}

	// The backend starts once wsbench's 3,000 subscribers are connected, so
	// its publications interleave with the load rather than precede it; if
	// wsbench ends first (a failure), it publishes anyway so the ext:feed
	// check still has something to say.
	buildBinary(t, "wsbench") // now, so the timeline below is wsbench's own
	// t.Context ends when the test does, also through a t.Fatal in
	// runPubsub: the goroutine then stops waiting and kills publish.py.
	ctx := t.Context()
	benchDone := make(chan struct{})
	type extRun struct {
		res        []extPublished
		start, end time.Time
	}
	extDone := make(chan extRun, 1)
	go func() {
	wait:
		for {
			var open int64
			for _, p := range gws {
				n, _ := p.metricNoFatal("wsgate_conns_open")
				open += n
			}
			if open >= 3000 {
				break
			}
			select {
			case <-benchDone:
				break wait
			case <-ctx.Done():
				break wait
			case <-time.After(20 * time.Millisecond):
			}
		}
		start := time.Now()
		res := publishExternally(ctx, rs.URL(), extChannel, payloads)
		extDone <- extRun{res, start, time.Now()}
	}()

	benchStart := time.Now()
	// runPubsub puts --addrs <first instance> first; the later --addrs wins.
	res := runPubsub(t, gws[0], "--addrs", addrsOf(gws), "--channels", "3", "--subs-per-channel", "1000",
		"--publishers", "9", "--messages", "3000", "--mode", "lockstep")
	benchEnd := time.Now()
	close(benchDone)
	er := <-extDone
	t.Logf("wsbench ran 0s–%v, publish.py ran %v–%v (relative to wsbench start)",
		benchEnd.Sub(benchStart).Round(time.Millisecond),
		er.start.Sub(benchStart).Round(time.Millisecond), er.end.Sub(benchStart).Round(time.Millisecond))
	during := 0
	for _, r := range er.res {
		if r.done.Before(benchEnd) {
			during++
		}
	}
	t.Logf("%d of %d backend publications completed while wsbench was running", during, extMessages)
	requireExactlyOnce(t, res, 3000, 3000)
	if res.CrossChannel != 0 {
		t.Fatalf("%d cross-channel deliveries", res.CrossChannel)
	}

	epoch := ""
	for i, r := range er.res {
		if r.err != nil {
			t.Fatal(r.err)
		}
		// publish.py ran sequentially on a fresh channel: offsets 1…20 in
		// one epoch.
		if r.offset != uint64(i+1) || (epoch != "" && r.epoch != epoch) {
			t.Fatalf("publish.py #%d: offset %d epoch %q, want %d in epoch %q", i+1, r.offset, r.epoch, i+1, epoch)
		}
		epoch = r.epoch
	}
	for i, c := range ext {
		for j, want := range payloads {
			m := c.frameMap()
			if m["type"] != "message" || m["channel"] != extChannel || toU(m["offset"]) != uint64(j+1) {
				t.Fatalf("instance %d: frame %d is %v, want message %s offset %d", i, j+1, m, extChannel, j+1)
			}
			if got, _ := m["data"].([]byte); string(got) != want {
				t.Fatalf("instance %d: offset %d carries %q, want %q", i, j+1, got, want)
			}
		}
	}
	// Every publication was out long before this point, so a duplicate
	// would be queued right behind the 20: a short silence rules it out.
	for _, c := range ext {
		c.expectNothing(300 * time.Millisecond)
	}
	requirePubsubConns(t, rs, gws, 4)
	requireNoRedisTrouble(t, gws)
}

// TestClusterInstances: two instances on a 3-master Redis Cluster. 600
// subscribers of 30 channels (spread over every master's slots) and 4
// publishers, alternating between the instances, get everything exactly
// once; each instance holds exactly one sharded pub/sub connection per
// master.
func TestClusterInstances(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	gws := []*gatewayProc{redisGateway(t, cl.URL()), redisGateway(t, cl.URL())}
	// The channels must live on every master, or a master's connections
	// would carry nothing and the per-master check would prove little.
	owners := map[int]int{}
	for i := range 30 {
		ch := fmt.Sprint("check:", i) // wsbench's channel names
		key := fmt.Sprintf("wsgate:{%d}:c:%s", crc32.ChecksumIEEE([]byte(ch))%64, ch)
		slot, err := cl.Nodes()[0].Do("CLUSTER", "KEYSLOT", key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(slot)
		owners[cl.SlotOwner(n)]++
	}
	if len(owners) != 3 || owners[-1] != 0 {
		t.Fatalf("channels per master %v: want all 3 masters used", owners)
	}
	t.Logf("channels per master (node index: count): %v", owners)
	for _, node := range cl.Nodes() {
		requirePubsubConns(t, node, gws, 1)
	}
	res := runPubsub(t, gws[0], "--addrs", addrsOf(gws), "--channels", "30", "--subs-per-channel", "20",
		"--publishers", "4", "--messages", "600", "--mode", "lockstep")
	requireExactlyOnce(t, res, 600, 600)
	if res.CrossChannel != 0 {
		t.Fatalf("%d cross-channel deliveries", res.CrossChannel)
	}
	for _, node := range cl.Nodes() {
		requirePubsubConns(t, node, gws, 1)
	}
	requireNoRedisTrouble(t, gws)
}

// presenceMember is one entry of a presence reply.
type presenceMember struct{ client, user string }

// presenceQuery sends presence or presence_stats on c and returns the
// reply (no pushes are expected on these connections: join_leave is off
// and nobody publishes, so the next frame is the reply).
func presenceQuery(t *testing.T, c *resumeClient, id int, cmd, channel string) map[string]any {
	t.Helper()
	c.cmd(map[string]any{"id": id, "cmd": cmd, "channel": channel})
	r := c.frameMap()
	if r["type"] != "reply" || toU(r["id"]) != uint64(id) || r["error"] != nil {
		t.Fatalf("%s %s: %v", cmd, channel, r)
	}
	return r
}

func membersOf(t *testing.T, r map[string]any) []presenceMember {
	t.Helper()
	list, _ := r["clients"].([]any)
	var ms []presenceMember
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			t.Fatalf("presence entry %v is not a map", e)
		}
		ms = append(ms, presenceMember{fmt.Sprint(m["client"]), fmt.Sprint(m["user"])})
	}
	slices.SortFunc(ms, func(a, b presenceMember) int { return strings.Compare(a.client, b.client) })
	return ms
}

// TestPresenceAcrossInstances: presence of room:lobby is one view across
// three instances (each holds a connection of the shared user and one of
// its own user), answered alike by every instance; when an instance is
// SIGKILLed (no chance to leave), its members expire within --presence-ttl
// while the survivors' members, refreshed by their instances, stay.
func TestPresenceAcrossInstances(t *testing.T) {
	const ttl, margin = 2 * time.Second, 1500 * time.Millisecond
	rs := redistest.StartStandalone(t)
	cfg := filepath.Join(t.TempDir(), "wsgate.json")
	if err := os.WriteFile(cfg, []byte(`{"namespaces": {"room": {"presence": true}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	gws := make([]*gatewayProc, 3)
	for i := range gws {
		gws[i] = redisGateway(t, rs.URL(), "--config", cfg, "--presence-ttl", ttl.String(),
			"--jwt-secret", string(testSecret))
	}
	const room = "room:lobby"
	id := 100 // command ids, fresh for each query
	nextID := func() int { id++; return id }
	conns := make([][]*resumeClient, len(gws)) // per instance: shared user, own user
	join := func(i int) {
		for _, user := range []string{"shared", fmt.Sprint("u", i)} {
			c := dialAs(t, gws[i].addr, token(t, user, time.Hour, nil))
			subscribeOK(t, c, 1, room)
			conns[i] = append(conns[i], c)
		}
	}
	// waitPresence polls presence_stats through c until it reports want
	// clients and users, then returns the presence list and how long it took.
	waitPresence := func(c *resumeClient, clients, users uint64, within time.Duration) ([]presenceMember, time.Duration) {
		t.Helper()
		start := time.Now()
		for {
			st := presenceQuery(t, c, nextID(), "presence_stats", room)
			if toU(st["clients"]) == clients && toU(st["users"]) == users {
				took := time.Since(start)
				ms := membersOf(t, presenceQuery(t, c, nextID(), "presence", room))
				if uint64(len(ms)) != clients {
					t.Fatalf("presence_stats says %d clients, presence lists %v", clients, ms)
				}
				return ms, took
			}
			if time.Since(start) > within {
				t.Fatalf("presence_stats %v after %v, want clients %d users %d", st, within, clients, users)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Instances 0 and 1 first, so their members are known apart from
	// instance 2's when it dies.
	join(0)
	join(1)
	survivors, _ := waitPresence(conns[0][0], 4, 3, 2*time.Second)
	join(2)
	var all []presenceMember
	for i := range gws {
		// Every instance answers from Redis, not from its own members.
		ms, took := waitPresence(conns[i][1], 6, 4, 2*time.Second)
		t.Logf("instance %d sees 6 clients / 4 users after %v", i, took)
		if all != nil && !slices.Equal(ms, all) {
			t.Fatalf("instance %d lists %v, instance 0 lists %v", i, ms, all)
		}
		all = ms
	}
	users := map[string]int{}
	for _, m := range all {
		users[m.user]++
	}
	if fmt.Sprint(users) != "map[shared:3 u0:1 u1:1 u2:1]" {
		t.Fatalf("presence users %v, want shared×3, u0, u1, u2", users)
	}
	for _, m := range survivors {
		if !slices.Contains(all, m) {
			t.Fatalf("member %v of instances 0/1 missing from %v", m, all)
		}
	}

	if err := gws[2].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for i := range 2 {
		ms, _ := waitPresence(conns[i][0], 4, 3, ttl+margin-time.Since(killed))
		t.Logf("instance %d: instance 2's members gone %v after the kill (ttl %v)", i, time.Since(killed).Round(time.Millisecond), ttl)
		if !slices.Equal(ms, survivors) {
			t.Fatalf("instance %d lists %v after the kill, want instances 0/1's %v", i, ms, survivors)
		}
	}
	// Past another full TTL the survivors must still be there: their
	// instances keep refreshing them (every TTL/3), so nothing of theirs
	// expires along with the dead instance's.
	for until := time.Now().Add(ttl + 500*time.Millisecond); time.Now().Before(until); {
		for i := range 2 {
			st := presenceQuery(t, conns[i][1], nextID(), "presence_stats", room)
			if toU(st["clients"]) != 4 || toU(st["users"]) != 3 {
				t.Fatalf("instance %d: presence_stats %v %v after the kill, want 4 clients / 3 users",
					i, st, time.Since(killed).Round(time.Millisecond))
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ms := membersOf(t, presenceQuery(t, conns[1][1], nextID(), "presence", room)); !slices.Equal(ms, survivors) {
		t.Fatalf("after %v: %v, want %v", time.Since(killed).Round(time.Millisecond), ms, survivors)
	}
}
