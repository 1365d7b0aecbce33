package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/auth"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func token(t *testing.T, sub string, exp time.Duration, extra map[string]any) string {
	t.Helper()
	// exp is whole seconds: rounded up, so the token lasts at least exp
	// (truncated, a 1.5 s token could expire in 0.5 s, mid-handshake).
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(exp + time.Second - 1).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authServer(t *testing.T, mutate func(*gateway.Config, *auth.Config)) *gateway.Server {
	t.Helper()
	return startServer(t, func(c *gateway.Config) {
		ac := auth.Config{HMACSecret: testSecret, Cookie: "wsgate_token"}
		if mutate != nil {
			mutate(c, &ac)
		}
		a, err := auth.New(ac)
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = a
	})
}

// handshakeStatusNoT is handshakeStatus for goroutines (0 on error).
func handshakeStatusNoT(addr string, extra ...string) int {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0
	}
	defer c.Close()
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	io.WriteString(c, req+"\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line := make([]byte, 12)
	if _, err := io.ReadFull(c, line); err != nil {
		return 0
	}
	var code int
	fmt.Sscanf(string(line), "HTTP/1.1 %d", &code)
	return code
}

// handshakeStatus sends an upgrade request with extra header lines and
// returns the HTTP status line's code.
func handshakeStatus(t *testing.T, addr, target string, extra ...string) int {
	t.Helper()
	c := mustDial(t, addr)
	defer c.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	mustWrite(t, c, req+"\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line := make([]byte, 12)
	if _, err := io.ReadFull(c, line); err != nil {
		t.Fatalf("read status: %v", err)
	}
	var code int
	fmt.Sscanf(string(line), "HTTP/1.1 %d", &code)
	return code
}

// TestHandshakeAuthentication: the token is checked before the 101, from
// the header, the query or the cookie; failures get their HTTP status and
// no upgrade. (The full token matrix is in gateway/auth's tests.)
func TestHandshakeAuthentication(t *testing.T) {
	srv := authServer(t, nil)
	addr := srv.Addr().String()
	good := token(t, "42", time.Minute, nil)
	for _, tc := range []struct {
		name   string
		target string
		hdr    []string
		want   int
	}{
		{"bearer header", "/ws", []string{"Authorization: Bearer " + good}, 101},
		{"query", "/ws?token=" + good, nil, 101},
		{"cookie", "/ws", []string{"Cookie: a=b; wsgate_token=" + good}, 101},
		{"no token", "/ws", nil, 401},
		{"expired", "/ws", []string{"Authorization: Bearer " + token(t, "42", -time.Minute, nil)}, 401},
		{"wrong signature", "/ws", []string{"Authorization: Bearer " + good[:len(good)-4] + "AAAA"}, 401},
		{"alg none", "/ws", []string{"Authorization: Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI0MiJ9."}, 401},
	} {
		if got := handshakeStatus(t, addr, tc.target, tc.hdr...); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	anon := authServer(t, func(_ *gateway.Config, a *auth.Config) { a.AllowAnonymous = true })
	if got := handshakeStatus(t, anon.Addr().String(), "/ws"); got != 101 {
		t.Errorf("anonymous allowed: status %d", got)
	}
}

// dialAs opens a /ws connection with a bearer token.
func dialAs(t *testing.T, addr, tok string) *resumeClient {
	t.Helper()
	c, err := dialIdleWith(addr, "/ws", "Authorization: Bearer "+tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &resumeClient{&wsConn{t: t, conn: c, br: newBufReader(c), rng: rand.New(rand.NewPCG(3, 4)), readTimeout: ioTimeout}, t}
}

// TestPrivateChannels: user 42 may use user#42 and dialog#42,43 but not
// user#43, gets a specific error, and never sees user#43's messages.
func TestPrivateChannels(t *testing.T) {
	srv := authServer(t, nil)
	addr := srv.Addr().String()
	u42 := dialAs(t, addr, token(t, "42", time.Minute, nil))
	u43 := dialAs(t, addr, token(t, "43", time.Minute, nil))
	for i, ch := range []string{"user#42", "dialog#42,43"} {
		u42.cmd(map[string]any{"id": i + 1, "cmd": "subscribe", "channel": ch})
		if m := u42.frameMap(); m["error"] != nil {
			t.Fatalf("subscribe %s: %v", ch, m)
		}
	}
	u42.cmd(map[string]any{"id": 9, "cmd": "subscribe", "channel": "user#43"})
	if m := u42.frameMap(); fmt.Sprint(m["error"]) != "map[code:108 message:not allowed to subscribe to user#43]" {
		t.Fatalf("subscribe user#43 as 42: %v", m)
	}
	u42.cmd(map[string]any{"id": 10, "cmd": "publish", "channel": "user#43", "data": []byte("x")})
	if m := u42.frameMap(); !strings.Contains(fmt.Sprint(m["error"]), "108") {
		t.Fatalf("publish to user#43 as 42: %v", m)
	}
	u43.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "user#43"})
	u43.frameMap()
	u43.cmd(map[string]any{"id": 2, "cmd": "publish", "channel": "user#43", "data": []byte("secret")})
	u43.cmd(map[string]any{"id": 3, "cmd": "publish", "channel": "dialog#42,43", "data": []byte("hello 42")})
	if m := u42.frameMap(); m["type"] != "message" || m["channel"] != "dialog#42,43" {
		t.Fatalf("user 42 received %v", m)
	}
	u42.expectNothing(200 * time.Millisecond) // and nothing of user#43
}

// TestTokenExpiryAndRefresh: an expired token brings a refresh push; a
// client that refreshes stays, one that does not is closed with 4004.
func TestTokenExpiryAndRefresh(t *testing.T) {
	skipSlow(t)
	srv := authServer(t, func(c *gateway.Config, _ *auth.Config) { c.RefreshGrace = time.Second })
	addr := srv.Addr().String()
	good := dialAs(t, addr, token(t, "7", 1500*time.Millisecond, nil))
	lazy := dialAs(t, addr, token(t, "8", 1500*time.Millisecond, nil))
	if m := good.frameMap(); m["type"] != "refresh" {
		t.Fatalf("want a refresh push, got %v", m)
	}
	good.cmd(map[string]any{"id": 1, "cmd": "refresh", "token": token(t, "7", time.Hour, nil)})
	if m := good.frameMap(); m["error"] != nil {
		t.Fatalf("refresh: %v", m)
	}
	if m := lazy.frameMap(); m["type"] != "refresh" {
		t.Fatalf("want a refresh push, got %v", m)
	}
	lazy.expectClose(gateway.CloseTokenExpired)
	time.Sleep(1500 * time.Millisecond)
	good.cmd(map[string]any{"id": 2, "cmd": "ping"})
	if m := good.frameMap(); m["error"] != nil || fmt.Sprint(m["id"]) != "2" {
		t.Fatalf("refreshed connection: %v", m)
	}
}

// TestRefreshRefused: a refresh with a token that is not valid gets 109,
// one for another user 108 (codec/README §6), and the connection goes on
// under its own token.
func TestRefreshRefused(t *testing.T) {
	srv := authServer(t, nil)
	c := dialAs(t, srv.Addr().String(), token(t, "7", time.Hour, nil))
	c.cmd(map[string]any{"id": 1, "cmd": "refresh", "token": "not-a-jwt"})
	if m := c.frameMap(); fmt.Sprint(m["id"]) != "1" || !errorCode(m, 109) {
		t.Fatalf("refresh with a bad token: %v, want error 109", m)
	}
	c.cmd(map[string]any{"id": 2, "cmd": "refresh", "token": token(t, "8", time.Hour, nil)})
	if m := c.frameMap(); fmt.Sprint(m["id"]) != "2" || !errorCode(m, 108) {
		t.Fatalf("refresh as another user: %v, want error 108", m)
	}
	c.cmd(map[string]any{"id": 3, "cmd": "subscribe", "channel": "user#7"})
	if m := c.frameMap(); fmt.Sprint(m["id"]) != "3" || m["error"] != nil {
		t.Fatalf("still user 7 after the refused refreshes: %v", m)
	}
}

// TestCommandFlood: a client flooding commands gets error 107, then is
// closed with 4029; a well-behaved client on the same server is served.
func TestCommandFlood(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.CommandRate, c.CommandBurst = 20, 10 })
	addr := srv.Addr().String()
	calm := &resumeClient{dialWS(t, addr, "/ws"), t}
	flood := &resumeClient{dialWS(t, addr, "/ws"), t}
	var burst []byte
	for i := range 200 {
		burst = append(burst, maskedBinary(mp(t, map[string]any{"id": i + 1, "cmd": "ping"}))...)
	}
	flood.writeRaw(burst)
	limited := 0
	for {
		ev, err := flood.next()
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
		if ev.op == opClose {
			if code, _ := parseClose(ev.payload); code != gateway.CloseRateLimited {
				t.Fatalf("close code %d, want 4029", code)
			}
			break
		}
		if bytes.Contains(ev.payload, []byte("rate limited")) {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no 107 before the close")
	}
	calm.cmd(map[string]any{"id": 1, "cmd": "ping"})
	if m := calm.frameMap(); m["error"] != nil {
		t.Fatalf("calm client: %v", m)
	}
}

// TestConnectionCaps: the per-IP cap answers 429 past its limit and the
// total cap 503, and freed slots are reusable.
func TestConnectionCaps(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.MaxConnsPerIP, c.MaxConns = 20, 30 })
	addr := srv.Addr().String()
	var held []net.Conn
	defer func() { closeAll(held) }()
	for range 20 {
		c, err := dialIdle(addr, "/echo")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if got := handshakeStatus(t, addr, "/echo"); got != http.StatusTooManyRequests {
		t.Fatalf("21st connection from one IP: %d, want 429", got)
	}
	// Another source address gets the remaining total, then 503.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	for i := 0; ; i++ {
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, nc)
		if !upgrade(nc) {
			if i < 10 {
				t.Fatalf("total cap refused after %d, want 10", i)
			}
			break
		}
	}
	closeAll(held[:5])
	waitUntil(t, 5*time.Second, func() bool { return srv.Metrics().ConnsOpen.Load() < 30 })
	c, err := dialIdle(addr, "/echo")
	if err != nil {
		t.Fatalf("after closing some: %v", err)
	}
	held = append(held, c)
}

// upgrade sends an upgrade request on nc and reports whether it got 101.
func upgrade(nc net.Conn) bool {
	io.WriteString(nc, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 12)
	_, err := io.ReadFull(nc, b)
	return err == nil && string(b) == "HTTP/1.1 101"
}

// TestAcceptRateAnswers503: past --accept-rate new connections get a quick
// 503 with Retry-After, never a timeout.
func TestAcceptRateAnswers503(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.AcceptRate = 5 })
	addr := srv.Addr().String()
	codes := map[int]int{}
	start := time.Now()
	for range 30 {
		codes[handshakeStatus(t, addr, "/echo")]++
	}
	if codes[503] == 0 || codes[101] == 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("statuses %v in %v", codes, time.Since(start))
	}
}
