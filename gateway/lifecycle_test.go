package gateway_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway"
)

// TestBytesAfterRequestAreKept: a client that sends its first frames in the
// same write as the upgrade request gets them echoed (gobwas's Upgrader
// would have dropped them with its read buffer).
func TestBytesAfterRequestAreKept(t *testing.T) {
	srv := startServer(t, nil)
	c := mustDial(t, srv.Addr().String())
	defer c.Close()
	req := "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	frames := "\x81\x82\x00\x00\x00\x00hi" + "\x82\x83\x00\x00\x00\x00abc"
	mustWrite(t, c, req+frames)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte("\x82\x03abc")) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Contains(got, []byte("\r\n\r\n\x81\x02hi\x82\x03abc")) {
		t.Fatalf("response %q lacks both echoes after the 101", got)
	}
}

// startHeartbeatServer starts a server with the given heartbeat timing.
func startHeartbeatServer(t *testing.T, pingInterval, pongTimeout time.Duration) *gateway.Server {
	t.Helper()
	return startServer(t, func(c *gateway.Config) {
		c.PingInterval, c.PongTimeout = pingInterval, pongTimeout
	})
}

// TestHeartbeat: a silent client is pinged after the ping interval and
// closed when nothing arrives within the pong timeout; a client that
// answers pings stays connected.
func TestHeartbeat(t *testing.T) {
	skipSlow(t)
	srv := startHeartbeatServer(t, 300*time.Millisecond, 300*time.Millisecond)
	addr := srv.Addr().String()

	// The interval runs from the server's read of the upgrade request, so
	// the clock starts before the dial: a late-waking client must not
	// make an on-time ping look early.
	start := time.Now()
	silent := dialWS(t, addr, "/echo")
	silent.expectPing()
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("pinged after %v, before the 300ms interval", d)
	}
	silent.expectTCPClose()
	if d := time.Since(start); d < 550*time.Millisecond || d > 3*time.Second {
		t.Fatalf("silent client closed after %v, want ~600ms", d)
	}
	if got := srv.Metrics().PongTimeouts.Load(); got != 1 {
		t.Fatalf("pong timeouts = %d, want 1", got)
	}

	alive := dialWS(t, addr, "/echo")
	for range 4 {
		alive.send(pongFrame(string(alive.expectPing())))
	}
	alive.send(textFrame("still here"))
	alive.expectMessage(opText, []byte("still here"))
}

// TestPingIntervalShorterThanPongTimeout: the next ping is due one ping
// interval after the pong, even when the pong timeout is longer. (The
// timer used to wait out the pong timeout first, so pings came every
// PongTimeout instead.)
func TestPingIntervalShorterThanPongTimeout(t *testing.T) {
	skipSlow(t)
	srv := startHeartbeatServer(t, 200*time.Millisecond, 5*time.Second)
	c := dialWS(t, srv.Addr().String(), "/echo")
	pings := 0
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		c.send(pongFrame(string(c.expectPing())))
		pings++
	}
	// 3 s is less than one pong timeout: pinging every PongTimeout would
	// show 1 ping; one every interval (plus the 100 ms timer tick) ~10.
	if pings < 4 {
		t.Fatalf("%d pings in %v with a 200ms interval, want one per interval", pings, time.Since(start))
	}
}

// TestPongWaitingInSocket: a gateway too busy to read (here: the
// connection's lock is held) reaches the pong deadline while the client's
// pong already waits in the socket. The client is alive, so it stays
// connected, and the waiver is counted.
func TestPongWaitingInSocket(t *testing.T) {
	skipSlow(t)
	srv := startHeartbeatServer(t, 300*time.Millisecond, 300*time.Millisecond)
	c := dialWS(t, srv.Addr().String(), "/echo")
	ping := c.expectPing()
	unlock := srv.LockConns()
	// Past the deadline the timer's dispatch waits for the lock; the pong
	// lands in the socket only then, so the read cannot come first.
	time.Sleep(time.Second)
	c.send(pongFrame(string(ping)))
	time.Sleep(100 * time.Millisecond)
	unlock()

	c.send(textFrame("still here"))
	c.expectMessage(opText, []byte("still here"))
	if got := srv.Metrics().PongTimeouts.Load(); got != 0 {
		t.Fatalf("pong timeouts = %d, want 0", got)
	}
	if got := srv.Metrics().PongsLate.Load(); got != 1 {
		t.Fatalf("late pongs = %d, want 1 (the waiting pong was not what saved the connection)", got)
	}
}

// TestHeartbeatTCP: with --heartbeat tcp the gateway sends no pings; the
// kernel's keepalive probes keep a live idle client connected and find a
// vanished one. The vanished client is simulated on loopback by a socket
// filter that drops everything arriving at its socket, so its TCP stack
// answers nothing: a host that went away without a FIN or RST.
func TestHeartbeatTCP(t *testing.T) {
	skipSlow(t)
	srv := startServer(t, func(c *gateway.Config) {
		c.Heartbeat, c.PingInterval, c.PongTimeout = gateway.HeartbeatTCP, time.Second, time.Second
	})
	addr := srv.Addr().String()
	live := dialWS(t, addr, "/echo")
	gone := dialWS(t, addr, "/echo")
	dropIncoming(t, gone.conn)
	start := time.Now()

	// Three ping intervals: a ping would have come after one.
	live.expectNothing(3 * time.Second)
	live.send(textFrame("still here"))
	live.expectMessage(opText, []byte("still here"))

	// Interval + timeout (2 s) after the last segment from the client, at
	// the first probe after that (probes every second here).
	waitUntil(t, 10*time.Second, func() bool { return srv.Metrics().PeerTimeouts.Load() > 0 })
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("vanished client timed out after %v, before --ping-interval + --pong-timeout (2s)", d)
	}
	waitUntil(t, 5*time.Second, func() bool { return srv.Metrics().ConnsOpen.Load() == 1 })
	if got := srv.Metrics().PeerTimeouts.Load(); got != 1 {
		t.Fatalf("peer timeouts = %d, want 1 (the vanished client only)", got)
	}
	if got := srv.Metrics().PongTimeouts.Load(); got != 0 {
		t.Fatalf("pong timeouts = %d, want 0: no ping was sent", got)
	}
}

// dropIncoming attaches a classic BPF filter that drops every segment
// arriving at conn's socket before TCP sees it: the peer then gets no ACK,
// no window update, no RST — as from a host that lost power.
func dropIncoming(t *testing.T, conn net.Conn) {
	t.Helper()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	dropAll := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	}); err != nil || serr != nil {
		t.Fatalf("attach drop filter: %v %v", err, serr)
	}
}

// TestOutboundQueueLimit: a client that sends but never reads fills its
// outbound queue; past MaxQueueBytes it is closed with 4008, counted, and
// after the echoes that were already written it finds that close code.
func TestOutboundQueueLimit(t *testing.T) {
	skipSlow(t)
	srv := startServer(t, func(c *gateway.Config) { c.MaxQueueBytes = 64 << 10 })
	c, err := dialIdle(srv.Addr().String(), "/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Keep our receive buffer small so the server's queue is what fills.
	c.(*net.TCPConn).SetReadBuffer(4096)
	msg := append([]byte("\x82\xFE\x10\x00\x00\x00\x00\x00"), bytes.Repeat([]byte("x"), 4096)...)
	// Stay at most 64 messages (256 KiB) ahead of what the server has
	// read: once it closes us, it drops what we still send only up to a
	// bound (4 MiB) and then resets the connection, which would destroy
	// the close frame in our buffers. Unpaced, a descheduled server let
	// this loop get that far ahead.
	const ahead = 64
	deadline := time.Now().Add(20 * time.Second)
	for sent := int64(0); srv.Metrics().SlowConsumers.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("never closed as a slow consumer")
		}
		if sent-srv.Metrics().MessagesIn.Load() >= ahead {
			time.Sleep(time.Millisecond)
			continue
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(msg); err != nil {
			break // the server closed us
		}
		sent++
	}
	if code := readCloseCode(c, 10*time.Second); code != gateway.CloseSlowConsumer {
		t.Fatalf("close code %d, want %d", code, gateway.CloseSlowConsumer)
	}
	// Other clients are unaffected.
	other := dialWS(t, srv.Addr().String(), "/echo")
	other.send(textFrame("ok"))
	other.expectMessage(opText, []byte("ok"))
}

// TestHandshakeTooLarge: a request head over MaxHandshakeBytes gets 431 and
// is closed, without waiting for the rest.
func TestHandshakeTooLarge(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.MaxHandshakeBytes = 1024 })
	c := mustDial(t, srv.Addr().String())
	defer c.Close()
	mustWrite(t, c, "GET /echo HTTP/1.1\r\nX-Filler: "+strings.Repeat("a", 2000))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 431 ")) {
		t.Fatalf("response %q, want 431", resp)
	}
	if got := srv.Metrics().HandshakesFailed.Load(); got != 1 {
		t.Fatalf("failed handshakes = %d, want 1", got)
	}
}

// TestHandshakeLimit: beyond MaxHandshakes concurrent handshakes, new
// connections are answered 503 with Retry-After, not left hanging.
func TestHandshakeLimit(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.MaxHandshakes = 10 })
	var stalled []net.Conn
	for range 10 {
		stalled = append(stalled, mustDial(t, srv.Addr().String()))
	}
	defer closeAll(stalled)
	deadline := time.Now().Add(5 * time.Second)
	for srv.Metrics().HandshakesActive.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c := mustDial(t, srv.Addr().String())
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := io.ReadAll(c)
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 503 ")) || !bytes.Contains(resp, []byte("Retry-After: 1")) {
		t.Fatalf("response %q, want 503 with Retry-After", resp)
	}
}

// TestRejectedHandshakes: refused upgrades get their HTTP status over a real
// socket, and the connection is closed.
func TestRejectedHandshakes(t *testing.T) {
	srv := startServer(t, nil)
	for _, tc := range []struct{ req, status string }{
		{"GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "404"},
		{"GET /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "403"},
		{"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
	} {
		c := mustDial(t, srv.Addr().String())
		mustWrite(t, c, tc.req)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.HasPrefix(resp, []byte("HTTP/1.1 "+tc.status+" ")) {
			t.Fatalf("%q: response %q (%v), want %s", tc.req, resp, err, tc.status)
		}
	}
}
