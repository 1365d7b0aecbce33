package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// startServer runs an in-process gateway and returns it (startEcho returns
// only the address); shutdown is waited for at cleanup.
func startServer(t *testing.T, mutate func(*gateway.Config)) *gateway.Server {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Echo = true
	cfg.DrainWindow = 100 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// TestSlowClientsStallNoOne: 1,000 clients stuck in the middle of a
// handshake, 1,000 stuck in the middle of a frame and 1,000 that send one
// byte per second cost no worker: 50 normal clients echo 1,000 messages
// each meanwhile, and the stalled handshakes are closed at their deadline.
func TestSlowClientsStallNoOne(t *testing.T) {
	const handshakeTimeout = 2 * time.Second
	srv := startServer(t, func(c *gateway.Config) { c.HandshakeTimeout = handshakeTimeout })
	addr := srv.Addr().String()

	halfHandshakes := make([]net.Conn, 1000)
	opened := time.Now()
	for i := range halfHandshakes {
		halfHandshakes[i] = mustDial(t, addr)
		mustWrite(t, halfHandshakes[i], "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
	}
	halfFrames := dialMany(t, addr, nil, 1000)
	defer closeAll(halfFrames)
	for _, c := range halfFrames {
		// A masked binary frame declaring 100 bytes, with 10 sent.
		mustWrite(t, c, "\x82\xE4\x01\x02\x03\x04"+"0123456789")
	}
	tricklers := dialMany(t, addr, nil, 1000)
	defer closeAll(tricklers)
	stopTrickle := trickle(tricklers, time.Second)
	defer stopTrickle()

	start := time.Now()
	if err := echoClients(addr, 50, 1000); err != nil {
		t.Fatalf("normal clients: %v", err)
	}
	t.Logf("50 clients × 1000 echoes took %v beside 3000 stalled clients", time.Since(start).Round(time.Millisecond))

	// Every half handshake must be closed by the server at its deadline.
	for i, c := range halfHandshakes {
		c.SetReadDeadline(opened.Add(handshakeTimeout + 5*time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("half handshake %d: read %v, want EOF (closed by the server)", i, err)
		}
		c.Close()
	}
	if since := time.Since(opened); since < handshakeTimeout {
		t.Fatalf("half handshakes closed after %v, before their %v deadline", since, handshakeTimeout)
	}
	if got := srv.Metrics().HandshakeTimeouts.Load(); got < 1000 {
		t.Fatalf("handshake timeouts counted: %d, want 1000", got)
	}
	// The stalled but upgraded connections are still open.
	if got := srv.Metrics().ConnsOpen.Load(); got < 2000 {
		t.Fatalf("open connections: %d, want the 2000 stalled upgraded ones", got)
	}
}

func mustDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// trickle writes one byte of a masked text frame to every connection each
// interval, from one goroutine. It returns a function that stops it.
func trickle(conns []net.Conn, every time.Duration) (stop func()) {
	frame := []byte("\x81\x85\x00\x00\x00\x00hello")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write(frame[i%len(frame) : i%len(frame)+1])
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// echoClients runs n gorilla clients that each echo msgs messages in lock
// step and verify every reply.
func echoClients(addr string, n, msgs int) error {
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- echoClient(addr, i, msgs) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func echoClient(addr string, id, msgs int) error {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		return fmt.Errorf("client %d dial: %w", id, err)
	}
	defer c.Close()
	for j := range msgs {
		want := fmt.Sprintf("client %d message %d", id, j)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
			return fmt.Errorf("client %d write %d: %w", id, j, err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("client %d read %d: %w", id, j, err)
		}
		if string(got) != want {
			return fmt.Errorf("client %d: got %q want %q", id, got, want)
		}
	}
	return nil
}
