package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// TestFlushAllBatchesAndBusyConns: 150 connections with a frame queued
// each are flushed in io_uring batches of at most 64 (three batches), every
// client reads its frame; one connection whose lock is held elsewhere is
// left out of the batches (never waited for by them) and flushed alone
// once its lock is free.
func TestFlushAllBatchesAndBusyConns(t *testing.T) {
	const n = 150
	s, clients := startWithClients(t, n)
	conns := s.index.all()
	if len(conns) != n {
		t.Fatalf("%d connections indexed, want %d", len(conns), n)
	}
	busy := conns[n/2]
	busy.mu.Lock() // its worker, say, answering a command
	unlock := sync.OnceFunc(busy.mu.Unlock)
	t.Cleanup(unlock) // before the server stops, should the test fail
	subs := make([]hub.Subscriber, n)
	for i, c := range conns {
		frame := wsframe.Frame(wsframe.OpText, fmt.Appendf(nil, "frame for fd %d", c.desc.Fd()))
		if c == busy {
			c.queueAllLocked([][]byte{frame})
		} else if !c.enqueue([][]byte{frame}) {
			t.Fatalf("conn %d: queue was not empty", i)
		}
		subs[i] = c.sess
	}
	batches0 := s.metrics.SendBatches.Load()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.sendBatches.flushAll(subs)
	}()

	got := readAll(t, clients, busy.desc.Fd(), s)
	select {
	case <-done:
		t.Fatal("flushAll returned while a connection it had to flush was locked")
	case <-time.After(50 * time.Millisecond):
	}
	// The count is added after each batch's send, so a client can read its
	// frame before the last increment.
	for deadline := time.Now().Add(10 * time.Second); s.metrics.SendBatches.Load()-batches0 < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if b := s.metrics.SendBatches.Load() - batches0; b != 3 {
		t.Errorf("%d batches for %d sockets, want 3", b, n-1)
	}
	unlock()
	<-done
	if want := fmt.Sprintf("frame for fd %d", busy.desc.Fd()); !got.waitFor(want) {
		t.Fatalf("the busy connection's frame never arrived")
	}
}

// startWithClients starts a server with batched sends and n JSON clients
// connected to its /ws endpoint.
func startWithClients(t *testing.T, n int) (*Server, []*cws.Conn) {
	t.Helper()
	s, clients := startWithClientsConfig(t, n, nil)
	if !s.sendBatches.enabled() {
		t.Fatal("batched sends unavailable: io_uring is enabled on the hosts this project supports")
	}
	return s, clients
}

// startWithClientsConfig is startWithClients with mutate applied to the
// default configuration.
func startWithClientsConfig(t *testing.T, n int, mutate func(*Config)) (*Server, []*cws.Conn) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	clients := make([]*cws.Conn, n)
	for i := range clients {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := cws.Dial(dctx, "ws://"+s.Addr().String()+"/ws", &cws.DialOptions{Subprotocols: []string{"wsgate.v1.json"}})
		dcancel()
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		clients[i] = c
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.index.all()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return s, clients
}

// received collects what the clients read, by text.
type received chan string

// waitFor reports whether want arrives within 10 s.
func (r received) waitFor(want string) bool {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-r:
			if m == want {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// readAll reads every client until each but the one on fd skip has its
// frame, and keeps reading in the background for that one.
func readAll(t *testing.T, clients []*cws.Conn, skip int, s *Server) received {
	t.Helper()
	out := make(received, len(clients))
	for _, c := range clients {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, data, err := c.Read(ctx)
			if err == nil {
				out <- string(data)
			}
		}()
	}
	want := map[string]bool{}
	for _, c := range s.index.all() {
		if fd := c.desc.Fd(); fd != skip {
			want[fmt.Sprintf("frame for fd %d", fd)] = true
		}
	}
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case m := <-out:
			if !want[m] {
				t.Fatalf("unexpected or duplicate frame %q", m)
			}
			delete(want, m)
		case <-timeout:
			t.Fatalf("%d clients did not get their frame while one connection was locked", len(want))
		}
	}
	return out
}
