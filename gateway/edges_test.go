package gateway_test

// The transport's edges, each tried over a raw socket 20 times: a close
// code or an HTTP status that reaches the client "most of the time" is a
// race, not a behaviour. Every attempt's outcome is described in words and
// tallied, so a failure shows what went wrong how often.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
)

// attempts is how often each edge is tried.
const attempts = 20

// tally runs try attempts times and requires every outcome to be want.
func tally(t *testing.T, want string, try func(i int) string) {
	t.Helper()
	counts := map[string]int{}
	for i := range attempts {
		counts[try(i)]++
	}
	if counts[want] != attempts {
		t.Errorf("outcomes %v, want %q in %d of %d", counts, want, attempts, attempts)
	}
}

// errClass names an I/O error briefly.
func errClass(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case isTimeout(err):
		return "timeout"
	}
	return err.Error()
}

// closeOutcome reads until the server's close frame, then expects the
// TCP connection to end cleanly (EOF, not a reset): "close 1009" means
// exactly that. Frames before the close (echoes) are skipped.
func closeOutcome(c *wsConn) string {
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		f, err := c.readFrame()
		if err != nil {
			return "no close frame: " + errClass(err)
		}
		if f.op != opClose {
			continue
		}
		code, _ := parseClose(f.payload)
		c.conn.SetReadDeadline(time.Now().Add(closeTimeout))
		var b [1]byte
		n, err := c.br.Read(b[:])
		switch {
		case n > 0:
			return fmt.Sprintf("close %d, then more bytes", code)
		case errors.Is(err, io.EOF):
			return fmt.Sprintf("close %d", code)
		default:
			return fmt.Sprintf("close %d, then %s", code, errClass(err))
		}
	}
}

// sendAllThenOutcome writes b from another goroutine (the server fails the
// connection while we are still writing) and reports the close outcome;
// a write that failed is part of the outcome: a careful server reads what
// the client still sends after its close frame, so the write completes.
func sendAllThenOutcome(c *wsConn, b []byte) string {
	written := make(chan error, 1)
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	go func() {
		_, err := c.conn.Write(b)
		written <- err
	}()
	out := closeOutcome(c)
	if err := <-written; err != nil {
		out += ", write: " + errClass(err)
	}
	c.conn.Close()
	return out
}

// TestErrorClosesReachTheClient: a client still sending when the server
// fails its connection (message over the limit, protocol error, bad UTF-8
// mid-message, a JSON nesting bomb) reads the exact close code and then a
// clean end of stream, every time. Before the server drained what such a
// client kept sending, closing with unread input sent a RST that destroyed
// the close frame in about half the attempts (the client saw 1006).
func TestErrorClosesReachTheClient(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 20 × 4 MB")
	}
	addr := srv(t, nil).Addr().String()
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	many := func(c *wsConn, first frame, rest int) []byte {
		frames := []frame{first}
		for range rest {
			frames = append(frames, binFrame(chunk))
		}
		return c.encode(frames...)
	}
	bomb := `{"id":1,"cmd":"publish","channel":"x","data":` + strings.Repeat("[", 500_000) + strings.Repeat("]", 500_000) + `}`
	for _, tc := range []struct {
		name  string
		path  string
		extra []string
		data  func(c *wsConn) []byte
		want  string
	}{
		{"200 KB message over a 64 KiB limit", "/echo", nil,
			func(c *wsConn) []byte { return c.encode(binFrame(bytes.Repeat([]byte("m"), 200_000))) }, "close 1009"},
		{"1 MiB message over a 64 KiB limit", "/echo", nil,
			func(c *wsConn) []byte { return c.encode(binFrame(bytes.Repeat([]byte("m"), 1<<20))) }, "close 1009"},
		{"1 MB JSON nesting bomb", "/ws", []string{"Sec-WebSocket-Protocol: " + gateway.ProtocolJSON},
			func(c *wsConn) []byte { return c.encode(textFrame(bomb)) }, "close 1009"},
		{"1002: reserved bit set, 1 MB still coming", "/echo", nil,
			func(c *wsConn) []byte { return many(c, binFrame([]byte("bad")).withRSV(4), 32) }, "close 1002"},
		{"1002: unmasked frame after an echo, 1 MB still coming", "/echo", nil,
			func(c *wsConn) []byte {
				return append(c.encode(binFrame(chunk)), many(c, binFrame([]byte("bad")).noMask(), 32)...)
			}, "close 1002"},
		{"1007: invalid UTF-8 in the middle of a text message, 1 MB still coming", "/echo", nil,
			func(c *wsConn) []byte {
				b := c.encode(frag(opText, strings.Repeat("é", 8<<10), false), frag(opCont, "ok \xff\xfe", false))
				for range 32 {
					b = append(b, c.encode(frag(opCont, string(chunk), false))...)
				}
				return b
			}, "close 1007"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tally(t, tc.want, func(int) string {
				c := dialWSWith(t, addr, tc.path, tc.extra...)
				return sendAllThenOutcome(c, tc.data(c))
			})
		})
	}
}

// srv is startServer for tests that only need the defaults changed.
func srv(t *testing.T, mutate func(*gateway.Config)) *gateway.Server { return startServer(t, mutate) }

// TestBigMessageToAReadingClient: a slow consumer is judged by its
// backlog, not by the size of one frame. With a 64 KiB queue limit and a
// 4 MiB message limit, 1 MiB messages echo to a client that reads, 20 in a
// row, and nobody is called a slow consumer.
func TestBigMessageToAReadingClient(t *testing.T) {
	s := srv(t, func(c *gateway.Config) {
		c.MaxMessageBytes = 4 << 20
		c.MaxQueueBytes = 64 << 10
	})
	c := dialWS(t, s.Addr().String(), "/echo")
	c.readTimeout = 20 * time.Second
	msg := bytes.Repeat([]byte("big"), (1<<20)/3)
	tally(t, "echoed", func(i int) string {
		msg[0] = byte(i)
		wait := c.writeAsync(c.encode(binFrame(msg)))
		ev, err := c.next()
		wait()
		switch {
		case err != nil:
			return "read error: " + errClass(err)
		case ev.op == opClose:
			code, _ := parseClose(ev.payload)
			return fmt.Sprintf("close %d", code)
		case ev.op != opBinary || !bytes.Equal(ev.payload, msg):
			return "wrong echo: " + ev.String()
		}
		return "echoed"
	})
	if n := s.Metrics().SlowConsumers.Load(); n != 0 {
		t.Errorf("%d slow consumers counted for a client that reads", n)
	}
}

// TestMessageTimeout: a frame trickled in (one byte every 100 ms) is
// closed with 4009 once --message-timeout has passed since its first byte
// — never before — and counted; a message that arrives in pieces within
// the timeout, and the silence between messages, are not affected.
func TestMessageTimeout(t *testing.T) {
	skipSlow(t)
	const timeout = 2 * time.Second
	s := srv(t, func(c *gateway.Config) { c.MessageTimeout = timeout })
	addr := s.Addr().String()

	steady := dialWS(t, addr, "/echo")
	// Four pieces 50 ms apart: well within the timeout even on a loaded machine.
	steady.sendChopped(10, 50*time.Millisecond, textFrame("in pieces, within the timeout"))
	steady.expectMessage(opText, []byte("in pieces, within the timeout"))

	conns := make([]*wsConn, attempts)
	started := make([]time.Time, attempts)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = dialWS(t, addr, "/echo")
		started[i] = time.Now()
		wire := conns[i].encode(textFrame(strings.Repeat("slow ", 20)))
		wg.Add(1)
		go func(c *wsConn) {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for _, b := range wire {
				c.conn.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.conn.Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}(conns[i])
	}
	tally(t, "close 4009 after the timeout", func(i int) string {
		out := closeOutcome(conns[i])
		if took := time.Since(started[i]); out == "close 4009" && took < timeout {
			return fmt.Sprintf("close 4009 after %v, before the %v timeout", took, timeout)
		}
		return out + " after the timeout"
	})
	close(stop)
	wg.Wait()
	if n := s.Metrics().MessageTimeouts.Load(); n != attempts {
		t.Errorf("message timeouts counted: %d, want %d", n, attempts)
	}
	// The steady client idled through all this: silence between messages
	// is the heartbeat's business, not the message deadline's.
	steady.send(textFrame("still here"))
	steady.expectMessage(opText, []byte("still here"))
}

// TestPartialBudget: partial input across all connections is bounded by
// --max-partial-bytes. With four clients holding 60,000 bytes of a frame
// each (240,000 of 262,144), a fifth that sends 60,000 more is closed with
// 4013, and a partial upgrade request that does not fit is answered 503;
// what is held is released when its connection goes.
func TestPartialBudget(t *testing.T) {
	s := srv(t, func(c *gateway.Config) {
		c.MaxPartialBytes = 256 << 10
		c.MaxHandshakeBytes = 32 << 10
		c.MessageTimeout = time.Minute
	})
	addr := s.Addr().String()
	partial := func(c *wsConn) []byte {
		return append(c.header(true, opBinary, 64000), bytes.Repeat([]byte("p"), 60000)...)
	}
	var holders []*wsConn
	for range 4 {
		c := dialWS(t, addr, "/echo")
		c.writeRaw(partial(c))
		holders = append(holders, c)
	}
	held := func() int64 { return s.Metrics().PartialBytes.Load() }
	waitUntil(t, 10*time.Second, func() bool { return held() == 240000 })

	t.Run("frame", func(t *testing.T) {
		tally(t, "close 4013", func(int) string {
			c := dialWS(t, addr, "/echo")
			return sendAllThenOutcome(c, partial(c))
		})
		if n := s.Metrics().PartialBudgetCloses.Load(); n != attempts {
			t.Errorf("budget closes counted: %d, want %d", n, attempts)
		}
		waitUntil(t, 10*time.Second, func() bool { return held() == 240000 })
	})
	t.Run("handshake", func(t *testing.T) {
		req := "GET /echo HTTP/1.1\r\nHost: x\r\nX-Filler: " + strings.Repeat("f", 30000)
		tally(t, "HTTP 503", func(int) string { return statusOutcome(addr, []byte(req)) })
	})
	for _, c := range holders {
		c.conn.Close()
	}
	waitUntil(t, 10*time.Second, func() bool { return held() == 0 })
	c := dialWS(t, addr, "/echo")
	msg := bytes.Repeat([]byte("q"), 60000)
	c.send(binFrame(msg))
	c.expectMessage(opBinary, msg)
}

// statusOutcome sends raw bytes as a request, reads the response's status
// line and then expects the server to close cleanly: "HTTP 400" means a
// 400 and then EOF.
func statusOutcome(addr string, req []byte) string {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	written := make(chan error, 1)
	c.SetDeadline(time.Now().Add(ioTimeout))
	go func() {
		_, err := c.Write(req)
		written <- err
	}()
	resp, err := io.ReadAll(c)
	werr := <-written
	status := "no response"
	if line, _, ok := bytes.Cut(resp, []byte("\r\n")); ok && bytes.HasPrefix(line, []byte("HTTP/1.1 ")) && len(line) >= 12 {
		status = "HTTP " + string(line[9:12])
	}
	if err != nil {
		status += ", then " + errClass(err)
	}
	if werr != nil {
		status += ", write: " + errClass(werr)
	}
	return status
}

// edgeRequest is a valid upgrade request for /echo with the given lines
// in place of the usual ones (a line "-Name" drops that header).
func edgeRequest(lines ...string) string {
	head := []string{"Host: x", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}
	for _, l := range lines {
		if name, ok := strings.CutPrefix(l, "-"); ok {
			for i, h := range head {
				if strings.HasPrefix(h, name+":") {
					head = append(head[:i], head[i+1:]...)
					break
				}
			}
			continue
		}
		head = append(head, l)
	}
	return "GET /echo HTTP/1.1\r\n" + strings.Join(head, "\r\n") + "\r\n\r\n"
}

// TestStrictUpgradeParsing: what RFC 7230 and RFC 6455 forbid in an
// upgrade request is answered 400 (and the connection closed cleanly,
// even when a body follows), every time; what they allow still upgrades.
func TestStrictUpgradeParsing(t *testing.T) {
	addr := srv(t, nil).Addr().String()
	body := strings.Repeat("b", 100_000)
	for _, tc := range []struct {
		name string
		req  string
		want string
	}{
		{"Transfer-Encoding chunked, with a body", edgeRequest("Transfer-Encoding: chunked") + "186a0\r\n" + body + "\r\n0\r\n\r\n", "HTTP 400"},
		{"Transfer-Encoding identity", edgeRequest("Transfer-Encoding: identity"), "HTTP 400"},
		{"Content-Length 1000000000, with a body", edgeRequest("Content-Length: 1000000000") + body, "HTTP 400"},
		{"Content-Length 5", edgeRequest("Content-Length: 5") + "hello", "HTTP 400"},
		{"space before a header colon", edgeRequest("X-Test : 1"), "HTTP 400"},
		{"tab before a header colon", edgeRequest("X-Test\t: 1"), "HTTP 400"},
		{"space before the Upgrade colon", edgeRequest("-Upgrade", "Upgrade : websocket"), "HTTP 400"},
		{"NUL in a header value", edgeRequest("X-Test: a\x00b"), "HTTP 400"},
		{"NUL in a header name", edgeRequest("X-Te\x00st: 1"), "HTTP 400"},
		{"NUL in the request target", strings.Replace(edgeRequest(), "/echo", "/echo\x00", 1), "HTTP 400"},
		{"control character 0x01 in a value", edgeRequest("X-Test: a\x01b"), "HTTP 400"},
		{"DEL in a value", edgeRequest("X-Test: a\x7fb"), "HTTP 400"},
		{"bare CR in a value", edgeRequest("X-Test: a\rb"), "HTTP 400"},
		{"bare LF in a value", edgeRequest("X-Test: a\nb"), "HTTP 400"},
		{"folded header line", edgeRequest("X-Test: a", " continued"), "HTTP 400"},
		{"two Sec-WebSocket-Key", edgeRequest("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA=="), "HTTP 400"},
		{"two Host", edgeRequest("Host: y"), "HTTP 400"},
		{"two Sec-WebSocket-Version", edgeRequest("Sec-WebSocket-Version: 13"), "HTTP 400"},
		{"two Upgrade", edgeRequest("upgrade: websocket"), "HTTP 400"},
		{"two Origin", edgeRequest("Origin: http://x", "Origin: http://x"), "HTTP 400"},
		// Allowed: no body, list-valued headers repeated, tabs in values.
		{"Content-Length 0", edgeRequest("Content-Length: 0"), "HTTP 101"},
		{"Sec-WebSocket-Protocol twice", edgeRequest("Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b"), "HTTP 101"},
		{"tab inside a value", edgeRequest("X-Test:\ta\tb\t"), "HTTP 101"},
		{"non-ASCII in a value", edgeRequest("X-Test: caf\xc3\xa9"), "HTTP 101"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tally(t, tc.want, func(int) string {
				if tc.want == "HTTP 101" {
					return upgradeOutcome(addr, tc.req)
				}
				return statusOutcome(addr, []byte(tc.req))
			})
		})
	}
}

// upgradeOutcome sends a request that should upgrade and reads only the
// response head (the connection then stays open).
func upgradeOutcome(addr, req string) string {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		return "write: " + errClass(err)
	}
	line := make([]byte, 12)
	if _, err := io.ReadFull(c, line); err != nil {
		return "read: " + errClass(err)
	}
	return "HTTP " + string(line[9:12])
}

// TestTokenTimeClaimsMustBeNumbers: a token whose exp is a JSON string
// (one that would parse as a future date) is refused with 401 at the
// handshake, every time; the same claims with a numeric exp upgrade.
func TestTokenTimeClaimsMustBeNumbers(t *testing.T) {
	addr := authServer(t, nil).Addr().String()
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	bad := token(t, "42", time.Hour, map[string]any{"exp": future})
	tally(t, "HTTP 401", func(int) string {
		return fmt.Sprintf("HTTP %d", handshakeStatusNoT(addr, "Authorization: Bearer "+bad))
	})
	good := token(t, "42", time.Hour, nil)
	if got := handshakeStatusNoT(addr, "Authorization: Bearer "+good); got != 101 {
		t.Fatalf("numeric exp: status %d, want 101", got)
	}
}

// TestRefusalAndCloseLogs: at debug level each refused handshake and each
// forced close is one structured line; at info level they are only
// counted, and the counts are written once per interval when non-zero —
// a storm of refusals is a couple of lines, not one per request.
func TestRefusalAndCloseLogs(t *testing.T) {
	var debugLog testutil.SyncBuffer
	s, _ := startServerLog(t, slog.LevelDebug, &debugLog, func(c *gateway.Config) {
		c.LogSummaryInterval = 200 * time.Millisecond
	})
	addr := s.Addr().String()
	for range 3 {
		statusOutcome(addr, []byte(edgeRequest("Origin: https://evil.test")))
	}
	for range 2 {
		statusOutcome(addr, []byte(edgeRequest("Host: twice")))
	}
	c := dialWS(t, addr, "/echo")
	c.send(binFrame(bytes.Repeat([]byte("m"), 70_000)))
	if out := closeOutcome(c); out != "close 1009" {
		t.Fatalf("oversized message: %s", out)
	}
	// The events may straddle two intervals: sum the summaries.
	refused := func() map[string]int { return summedCounts(debugLog.String(), "refused handshakes") }
	closed := func() map[string]int { return summedCounts(debugLog.String(), "forced closes") }
	waitUntil(t, 10*time.Second, func() bool { return refused()["total"] == 5 && closed()["total"] == 1 })
	logs := debugLog.String()
	for _, want := range []string{
		`level=DEBUG msg="handshake refused" status=403 reason=origin peer=127.0.0.1:`,
		`level=DEBUG msg="handshake refused" status=400 reason=bad_request peer=127.0.0.1:`,
		`detail="duplicate Host header"`,
		`level=DEBUG msg="connection closed by the server" code=1009 peer=127.0.0.1:`,
		`level=INFO msg="refused handshakes" period=200ms total=`,
		`level=INFO msg="forced closes" period=200ms total=1 1009=1`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if r := refused(); r["origin"] != 3 || r["bad_request"] != 2 || len(r) != 3 {
		t.Errorf("refused handshakes summed over the summaries: %v, want origin 3, bad_request 2", r)
	}

	// At info level, 300 refusals within one interval are one line.
	var infoLog testutil.SyncBuffer
	quiet, stop := startServerLog(t, slog.LevelInfo, &infoLog, func(c *gateway.Config) {
		c.LogSummaryInterval = time.Hour // only the final summary, at shutdown
		c.AllowedOrigins = []string{"https://app.test"}
	})
	for range 300 {
		statusOutcome(quiet.Addr().String(), []byte(edgeRequest("Origin: https://evil.test")))
	}
	stop()
	logs = infoLog.String()
	if strings.Contains(logs, "handshake refused") || strings.Count(logs, `msg="refused handshakes"`) != 1 ||
		!strings.Contains(logs, `msg="refused handshakes" period=1h0m0s total=300 origin=300`) {
		t.Fatalf("300 refusals at info level logged:\n%s", logs)
	}
}

// summedCounts adds up the key=count attributes of every info summary
// line with message msg.
func summedCounts(logs, msg string) map[string]int {
	sum := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		rest, ok := strings.CutPrefix(line, `level=INFO msg="`+msg+`" `)
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			if n, err := strconv.Atoi(v); err == nil {
				sum[k] += n
			}
		}
	}
	return sum
}

// startServerLog is startServer logging to w at level; the server's final
// summary is written by the time the test's cleanups have run.
func startServerLog(t *testing.T, level slog.Level, w io.Writer, mutate func(*gateway.Config)) (*gateway.Server, func()) {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Echo = true
	cfg.DrainWindow = 100 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := gateway.New(cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // stable lines to match
			}
			return a
		},
	})))
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(stop)
	return s, stop
}

// TestConfigValidation: settings that cannot work together are refused
// by New with an error naming the flags.
func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*gateway.Config)
		want   string
	}{
		{"partial budget below one message", func(c *gateway.Config) { c.MaxPartialBytes = 1000 },
			"--max-partial-bytes 1000 is less than --max-message-bytes 65536"},
		{"queue below a few replies", func(c *gateway.Config) { c.MaxQueueBytes = 100 }, "--max-queue-bytes 100 is less than 4096"},
		{"burst 0 with a command rate", func(c *gateway.Config) { c.CommandRate, c.CommandBurst = 10, 0 }, "--command-burst 0 with --command-rate 10"},
		{"per-IP limit above the total", func(c *gateway.Config) { c.MaxConns, c.MaxConnsPerIP = 10, 20 }, "--max-conns-per-ip 20 is more than --max-conns 10"},
		{"per-user limit above the total", func(c *gateway.Config) { c.MaxConns, c.MaxConnsPerUser = 10, 20 }, "--max-conns-per-user 20 is more than --max-conns 10"},
		{"handshake larger than half a read buffer", func(c *gateway.Config) { c.MaxHandshakeBytes = 40000 }, "--max-handshake-bytes 40000: want 256 to 32768"},
		{"message limit over 1 GiB", func(c *gateway.Config) { c.MaxMessageBytes = 2 << 30 }, "--max-message-bytes 2147483648: want 1 to 1073741824"},
		{"idempotency keys kept under a millisecond", func(c *gateway.Config) { c.IdempotencyTTL = 500 * time.Microsecond },
			"--idempotency-ttl 500µs: want at least 1ms"},
		{"no message timeout", func(c *gateway.Config) { c.MessageTimeout = 0 }, "--message-timeout must be positive"},
		{"unknown heartbeat", func(c *gateway.Config) { c.Heartbeat = "udp" }, `--heartbeat "udp": want "ping" or "tcp"`},
		{"tcp heartbeat below a second", func(c *gateway.Config) { c.Heartbeat, c.PongTimeout = gateway.HeartbeatTCP, 500*time.Millisecond },
			"--heartbeat tcp counts in whole seconds"},
		{"tcp heartbeat over TCP_KEEPIDLE's limit", func(c *gateway.Config) { c.Heartbeat, c.PingInterval = gateway.HeartbeatTCP, 10*time.Hour },
			"--ping-interval and --pong-timeout must be 1s to 9h6m7s"},
		{"no refresh grace", func(c *gateway.Config) { c.RefreshGrace = 0 }, "--refresh-grace 0s: want at least 1s"},
		{"negative refresh grace", func(c *gateway.Config) { c.RefreshGrace = -time.Second }, "--refresh-grace -1s: want at least 1s"},
		{"refresh grace shorter than a round trip", func(c *gateway.Config) { c.RefreshGrace = 50 * time.Millisecond },
			"--refresh-grace 50ms: want at least 1s"},
		{"publication limit leaving no room for the command", func(c *gateway.Config) { c.MaxMessageBytes, c.MaxPublicationBytes = 65536, 65535 },
			"for the publish command around the data"},
		{"channel names eating the publication's room", func(c *gateway.Config) { c.MaxChannelBytes = 2048 },
			"for the publish command around the data"},
		{"a proxy by name", func(c *gateway.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "lb.example.com"} },
			`--trusted-proxies "lb.example.com": want a CIDR`},
	} {
		cfg := gateway.DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		tc.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
		if _, err := gateway.New(cfg, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
	if err := gateway.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestLargestPublishFits: a publish of the largest data allowed, on the
// longest channel name, with the longest idempotency key, as JSON (the
// wordier encoding), is answered — not closed with 1009 for a message over
// the limit — under the tightest limits Validate accepts.
func TestLargestPublishFits(t *testing.T) {
	const message, channelBytes = 4096, 128
	room := message
	for {
		cfg := gateway.DefaultConfig()
		cfg.MaxMessageBytes, cfg.MaxChannelBytes, cfg.MaxPublicationBytes = message, channelBytes, room
		if cfg.Validate() == nil {
			break
		}
		room--
	}
	srv := startServer(t, func(c *gateway.Config) {
		c.MaxMessageBytes, c.MaxChannelBytes, c.MaxPublicationBytes = message, channelBytes, room
	})
	pub := dialWSWith(t, srv.Addr().String(), "/ws", "Sec-WebSocket-Protocol: wsgate.v1.json")
	data := `"` + strings.Repeat("d", room-2) + `"`
	cmd := fmt.Sprintf(`{"id":4294967295,"cmd":"publish","channel":%q,"data":%s,"idempotency_key":%q}`,
		strings.Repeat("c", channelBytes), data, strings.Repeat("k", 256))
	pub.send(textFrame(cmd))
	ev, err := pub.next()
	if err != nil || ev.op != opText || !strings.Contains(string(ev.payload), `"offset":1`) {
		t.Fatalf("the largest publish (%d bytes of data in a %d-byte message): %v %v, want its reply", room, len(cmd), ev, err)
	}
}

// TestMessageTimeoutRestartsPerMessage: the message deadline is per
// message. A client streaming messages back to back, each split across two
// writes so that no read ends on a message boundary, is never closed with
// 4009, however long the stream lasts (here past the timeout), as long as
// each message arrives within it.
func TestMessageTimeoutRestartsPerMessage(t *testing.T) {
	const timeout, gap, messages = 2 * time.Second, 400 * time.Millisecond, 8
	s := srv(t, func(c *gateway.Config) { c.MessageTimeout = timeout })
	c := dialWS(t, s.Addr().String(), "/echo")
	var wire [][]byte
	for i := range messages {
		wire = append(wire, c.encode(textFrame(fmt.Sprintf("message %d of a stream", i))))
	}
	go func() {
		var carry []byte
		for _, w := range wire {
			half := len(w) / 2
			c.conn.Write(append(carry, w[:half]...)) // the rest of the last, the start of this one
			carry = append([]byte(nil), w[half:]...)
			time.Sleep(gap)
		}
		c.conn.Write(carry)
	}()
	for i := range messages {
		c.expectMessage(opText, []byte(fmt.Sprintf("message %d of a stream", i)))
	}
}
