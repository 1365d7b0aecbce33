package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

const upgradeRequest = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// TestDrainRefusesNewHandshakes: from the moment shutdown starts until the
// listener closes, the server is not ready and answers every new upgrade
// request — and a connection still without a request — with 503 and
// Retry-After, which a load balancer retries on another instance. Once
// Serve returns, the port refuses connections.
func TestDrainRefusesNewHandshakes(t *testing.T) {
	skipSlow(t)
	cfg := gateway.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Echo = true
	cfg.DrainWindow = 2 * time.Second
	srv, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	addr := srv.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	// Clients that never answer the close frame keep the drain going for
	// its whole window (50 batches of 2).
	idle := dialMany(t, addr, nil, 100)
	defer closeAll(idle)
	if !srv.Ready() {
		t.Fatal("not ready before shutdown")
	}
	// Connected, but its request is not complete when the drain begins.
	early := mustDial(t, addr)
	defer early.Close()
	mustWrite(t, early, "GET /echo HTTP/1.1\r\n")

	start := time.Now()
	cancel()
	deadline := time.Now().Add(time.Second)
	for srv.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("still ready 1s after shutdown began")
		}
		time.Sleep(time.Millisecond)
	}
	c := mustDial(t, addr)
	defer c.Close()
	mustWrite(t, c, upgradeRequest)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(c)
	if err != nil || !bytes.HasPrefix(resp, []byte("HTTP/1.1 503 ")) || !bytes.Contains(resp, []byte("Retry-After: 1\r\n")) {
		t.Fatalf("request during the drain: %q (%v), want 503 with Retry-After", resp, err)
	}
	if took := time.Since(start); took > cfg.DrainWindow {
		t.Fatalf("answered after %v, after the drain window: the test saw no drain", took)
	}

	early.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err = io.ReadAll(early)
	if err != nil || !bytes.HasPrefix(resp, []byte("HTTP/1.1 503 ")) {
		t.Fatalf("connection without a request at the drain: %q (%v), want 503", resp, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if got := srv.Metrics().RefusedDraining.Load(); got != 2 {
		t.Errorf("refused while draining = %d, want 2", got)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Serve returned: %v, want connection refused", err)
	}
}
