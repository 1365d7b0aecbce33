package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/gateway"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// server that leaves a reader, writer or timer behind after shutdown (or a
// test that strands one) is a leak at a million connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startEcho starts a gateway with the raw echo endpoint /echo on a free
// loopback port and returns its "host:port". mutate, if not nil, adjusts the
// test defaults (64 KiB message limit). The server is shut down, and Serve
// waited for, when t's cleanup runs.
func startEcho(t *testing.T, mutate func(*gateway.Config)) string {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Echo = true
	cfg.MaxMessageBytes = 64 << 10
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
		select {
		case err := <-done:
			// A cancelled context is the normal way out; how Serve
			// reports it is its own business.
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return within 10s of cancel")
		}
	})
	return srv.Addr().String()
}
