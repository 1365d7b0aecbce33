// Package e2e runs the whole architecture on loopback — clients → load
// balancer → three wsgate instances → Redis, backends publishing from the
// side — with the real nginx and HAProxy on the shipped example configs,
// through a rolling restart of every instance and a crash of one, and
// checks the delivery contract from the clients' side. Test-only.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { builds.Cleanup() }))
}

// The scenario's size (acceptance item 1 of issue 15).
const (
	numClients  = 300
	numChannels = 20
)

func TestThroughNginx(t *testing.T)   { runScenario(t, balancers["nginx"]) }
func TestThroughHAProxy(t *testing.T) { runScenario(t, balancers["haproxy"]) }

// channelsOf gives client k two distinct channels; every channel ends up
// with 30 subscribers.
func channelsOf(k int) []string {
	a := k % numChannels
	b := (k + 1 + k/numChannels) % numChannels
	return []string{channelName(a), channelName(b)}
}

func channelName(i int) string { return fmt.Sprintf("e2e:room-%02d", i) }

// timeline logs the scenario's phases with the time since it began.
type timeline struct {
	t     *testing.T
	start time.Time
}

func (tl timeline) phase(format string, args ...any) {
	tl.t.Helper()
	tl.t.Logf("[%6.2fs] %s", time.Since(tl.start).Seconds(), fmt.Sprintf(format, args...))
}

func runScenario(t *testing.T, b balancer) {
	if testing.Short() {
		t.Skip("end-to-end: redis-server, three wsgate processes and " + b.name)
	}
	tl := timeline{t: t, start: time.Now()}
	n := newNetwork(t)
	rs := startRedis(t)
	gws := make([]*gateway, instances)
	for i := range gws {
		gws[i] = startGateway(t, gatewaySpec(t, n, i, rs.URL()), i)
	}
	files := b.prepare(t, n)
	b.start(t, n, files)
	tl.phase("redis, 3 gateways and %s up on %s (clients), instances %s…", b.name, n.httpsAddr(), n.wsAddr(0))
	checkRedirect(t, n)
	for i := range gws {
		b.waitInRotation(t, n, files, i)
	}
	checkBrowserOrigin(t, n, files)

	// Clients connect through the balancer only.
	ctx, cancel := context.WithCancel(context.Background())
	var clientsDone sync.WaitGroup
	defer func() { cancel(); clientsDone.Wait() }()
	cfg := defaultClientConfig("wss://"+n.httpsAddr()+"/ws", files.certs.clientConfig())
	logs := make([]*clientLog, numClients)
	clients := make([]appClient, numClients)
	for k := range clients {
		logs[k] = newClientLog()
		clients[k] = newWSClient(k, cfg, channelsOf(k), logs[k])
		clientsDone.Add(1)
		go func() {
			defer clientsDone.Done()
			clients[k].Run(ctx)
		}()
		time.Sleep(3 * time.Millisecond) // a quick ramp, not a storm
	}
	tl.phase("%d clients started", numClients)
	if !waitFor(60*time.Second, func() bool { return connectionSummary(logs).Connected == numClients }) {
		t.Fatalf("not every client connected within 60s: %+v", connectionSummary(logs))
	}
	tl.phase("%d clients connected", numClients)
	if !waitFor(60*time.Second, func() bool { return allSubscribed(clients) }) {
		t.Fatalf("not every client subscribed within 60s: %+v", connectionSummary(logs))
	}
	tl.phase("%d clients subscribed to 2 of %d channels each, through %s", numClients, numChannels, b.name)

	led := newLedger()
	channels := make([]string, numChannels)
	for i := range channels {
		channels[i] = channelName(i)
	}
	pubs, err := startPublishers(led, clients, channelsOf, n, rs.Addr(), channels)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)

	// Rolling restart: each instance drains (SIGTERM), restarts, is ready,
	// and is back in the balancer's rotation before the next one goes.
	refusedWhileDraining := 0
	for i, g := range gws {
		tl.phase("rolling restart: SIGTERM gw%d", i+1)
		refused := watchCounter(n.debugAddr(i), "wsgate_refused_draining_total")
		stopped := make(chan error, 1)
		go func() { stopped <- g.stop() }()
		probeDrain(t, n, i)
		if err := <-stopped; err != nil {
			t.Errorf("gw%d after SIGTERM: %v", i+1, err)
		}
		r := <-refused - 1 // the probe's own handshake
		refusedWhileDraining += r
		tl.phase("gw%d exited after refusing %d handshakes from %s with 503; restarting", i+1, r, b.name)
		g.start()
		tl.phase("gw%d ready (/readyz 200)", i+1)
		b.waitInRotation(t, n, files, i)
		tl.phase("gw%d back in %s's rotation", i+1, b.name)
	}

	// A crash: SIGKILL, then a restart a second later (systemd's
	// Restart=always, a Deployment's new pod).
	const crashed = 1
	tl.phase("SIGKILL gw%d", crashed+1)
	gws[crashed].kill()
	time.Sleep(time.Second)
	gws[crashed].start()
	tl.phase("gw%d restarted and ready", crashed+1)
	b.waitInRotation(t, n, files, crashed)
	time.Sleep(2 * time.Second)

	pubs.stop()
	if !waitFor(30*time.Second, led.settled) {
		t.Errorf("publications still without an outcome 30s after the publishers stopped")
	}
	tl.phase("publishers stopped, every publication settled; waiting for every subscriber to catch up")
	if !waitFor(30*time.Second, func() bool { return caughtUp(clients, led) }) {
		t.Errorf("not every subscriber reached the last acknowledged offset of its channels within 30s")
	}
	cancel()
	clientsDone.Wait()
	tl.phase("clients stopped")

	v := led.check(logs, channelsOf)
	cs := connectionSummary(logs)
	report(t, b.name, led, v, cs)
	t.Logf("%s — %d handshakes sent to a draining instance got 503 + Retry-After there (the balancer retried them elsewhere or passed the 503 on)", b.name, refusedWhileDraining)
	switch {
	case v.SilentLosses > 0 || v.Duplicates > 0 || v.WrongData > 0 || v.OutOfOrder > 0 || v.ConflictAcks > 0:
		t.Errorf("delivery contract broken through %s: %d silent losses, %d duplicates, %d wrong data, %d out of order, %d conflicting acks; e.g.\n  %s",
			b.name, v.SilentLosses, v.Duplicates, v.WrongData, v.OutOfOrder, v.ConflictAcks, strings.Join(v.Examples, "\n  "))
	case v.Anomalies > 0:
		t.Errorf("%d protocol anomalies; e.g.\n  %s", v.Anomalies, strings.Join(v.Examples, "\n  "))
	}
	if cs.CloseCodes[1001] == 0 || cs.Connects <= numClients {
		t.Errorf("close codes %v, %d connects: the restarts did not move the clients", cs.CloseCodes, cs.Connects)
	}
	if cs.GaveUp > 0 {
		t.Errorf("%d clients could not reconnect through %s within %d attempts", cs.GaveUp, b.name, cfg.maxAttempts)
	}
	for _, src := range []string{"client", "api", "redis"} {
		if led.ackCount[src] == 0 {
			t.Errorf("no %s publication was acknowledged", src)
		}
	}
	if v.Expected < numClients*2*10 {
		t.Errorf("only %d expected deliveries: the scenario published too little to show anything", v.Expected)
	}
}

func allSubscribed(clients []appClient) bool {
	for k, c := range clients {
		for _, ch := range channelsOf(k) {
			if _, _, ok := c.Position(ch); !ok {
				return false
			}
		}
	}
	return true
}

// caughtUp: every subscriber's position reached the highest acknowledged
// offset of each of its channels.
func caughtUp(clients []appClient, l *ledger) bool {
	for k, c := range clients {
		for _, ch := range channelsOf(k) {
			epoch, off, ok := c.Position(ch)
			if !ok || off < l.top(ch, epoch) {
				return false
			}
		}
	}
	return true
}

// report logs the numbers the issue asks for.
func report(t *testing.T, name string, l *ledger, v verdict, cs connectionStats) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s — publications: attempted %s, acknowledged %s (replayed %s), not acknowledged %v",
		name, sortedCounts(l.attempts), sortedCounts(l.ackCount), sortedCounts(l.replayed), l.failed)
	t.Logf("%s — %d subscriptions: %d expected deliveries, %d delivered, %d announced as missed (notices %s), "+
		"%d silent losses, %d duplicates, %d wrong data, %d out of order; %d repeated offsets dropped by the client, "+
		"%d deliveries of unacknowledged publications, %d offsets skipped without a notice",
		name, v.Subscriptions, v.Expected, v.Delivered, v.Noticed, sortedCounts(v.Notices),
		v.SilentLosses, v.Duplicates, v.WrongData, v.OutOfOrder, v.Repeats, v.Unacked, v.Holes)
	t.Logf("%s — connections: %d connects, longest time without a connection %v, failed handshakes %s, gave up %d, close codes seen %s",
		name, cs.Connects, cs.LongestDown.Round(time.Millisecond), sortedCounts(cs.HandshakeErrors), cs.GaveUp, sortedCounts(cs.CloseCodes))
}

// checkRedirect: the plain-HTTP listener redirects to https (308).
func checkRedirect(t *testing.T, n network) {
	t.Helper()
	c := http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get("http://" + n.httpAddr() + "/ws")
	if err != nil {
		t.Fatalf("plain HTTP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Errorf("plain HTTP: %s, Location %q; want 308 to https", resp.Status, resp.Header.Get("Location"))
	}
}

// checkBrowserOrigin: a browser on a page of the public name, on the
// balancer's port (not 443 here), sends Origin https://ws.example.com:<port>
// and Host ws.example.com:<port>. wsgate's default Origin policy accepts it
// only if the balancer passes Host on with its port.
func checkBrowserOrigin(t *testing.T, n network, f lbFiles) {
	t.Helper()
	public := net.JoinHostPort(serverName, strconv.Itoa(n.httpsPort))
	d := websocket.Dialer{TLSClientConfig: f.certs.clientConfig(), HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"wsgate.v1.json"}}
	h := http.Header{"Host": {public}, "Origin": {"https://" + public}}
	conn, resp, err := d.Dial("wss://"+n.httpsAddr()+"/ws", h)
	if err != nil {
		t.Fatalf("browser handshake with Origin https://%s through the balancer: %s, want 101", public, handshakeError(resp, err))
	}
	conn.Close()
}

// upgradeRequest is a WebSocket handshake sent straight to an instance.
const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: e2e\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// watchCounter polls a counter on a debug listener until the process is
// gone and then sends its last value.
func watchCounter(debugAddr, name string) <-chan int {
	out := make(chan int, 1)
	go func() {
		last := 0
		c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := c.Get("http://" + debugAddr + "/metrics")
			if err != nil {
				break
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
					last, _ = strconv.Atoi(v)
				}
			}
			resp.Body.Close()
		}
		out <- last
	}()
	return out
}

// probeDrain checks, right after SIGTERM, what a balancer sees of a
// draining instance: /readyz answers 503 and a new handshake gets 503 with
// Retry-After.
func probeDrain(t *testing.T, n network, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), drainWindow)
	defer cancel()
	var code int
	for ctx.Err() == nil {
		if code, _ = httpStatus(ctx, "http://"+n.debugAddr(i)+"/readyz"); code == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable {
		t.Errorf("gw%d draining: /readyz answered %d, want 503", i+1, code)
		return
	}
	c, err := net.DialTimeout("tcp4", n.wsAddr(i), time.Second)
	if err != nil {
		t.Errorf("gw%d draining: connect: %v (the listener must stay open during the drain)", i+1, err)
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, upgradeRequest); err != nil {
		t.Errorf("gw%d draining: write: %v", i+1, err)
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Errorf("gw%d draining: read response: %v", i+1, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("gw%d draining: handshake answered %s (Retry-After %q), want 503 with Retry-After", i+1, resp.Status, resp.Header.Get("Retry-After"))
	}
}

// waitInRotation waits until the balancer sends new clients to instance i
// again, the way an operator's rolling deploy would: HAProxy is asked
// (its active check saw /readyz 200 `rise` times); nginx has only passive
// checks, so an instance it marked failed is retried after fail_timeout.
func (b balancer) waitInRotation(t *testing.T, n network, f lbFiles, i int) {
	t.Helper()
	switch b.name {
	case "haproxy":
		for line := 1; line <= 4; line++ { // one server line per source address
			server := fmt.Sprintf("gw%d-s%d", i+1, line)
			var status string
			if !waitFor(30*time.Second, func() bool {
				status = haproxyStatus(f, server)
				return strings.HasPrefix(status, "UP")
			}) {
				t.Fatalf("haproxy: %s still %q after 30s", server, status)
			}
		}
	case "nginx":
		// No state to wait for: with max_fails=0 nginx never takes an
		// instance out, it retries each handshake elsewhere instead.
		text, err := os.ReadFile(f.config)
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`(?m)^\s*server .*max_fails=(\d+)`).FindAllSubmatch(text, -1); len(m) != instances || string(m[0][1]) != "0" {
			t.Fatalf("nginx config: max_fails %q, want 0 on every instance (see the comment there)", m)
		}
	}
}

// haproxyStatus reads a server's status ("UP", "DOWN", "UP 1/2", …) from
// the runtime API socket the example config declares.
func haproxyStatus(f lbFiles, server string) string {
	c, err := net.DialTimeout("unix", f.dir+"/admin.sock", time.Second)
	if err != nil {
		return "socket: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return err.Error()
	}
	b, _ := io.ReadAll(c)
	lines := strings.Split(string(b), "\n")
	if len(lines) == 0 {
		return "empty stats"
	}
	head := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	col := -1
	for k, h := range head {
		if h == "status" {
			col = k
		}
	}
	for _, l := range lines[1:] {
		fs := strings.Split(l, ",")
		if len(fs) > col && col >= 0 && fs[0] == "wsgate" && fs[1] == server {
			return fs[col]
		}
	}
	return "not found"
}
