package gateway_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestIdleConnectionCosts checks the core's three per-connection promises
// on the real binary: one fd per connection (2,000 connections: at most
// 2,000 + a small constant fds), no goroutine per connection (5,000 vs 10
// connections: within 64), and at most 1 KiB of Go heap per idle
// connection (HeapInuse slope between 1,000 and 5,000).
func TestIdleConnectionCosts(t *testing.T) {
	skipSlow(t)
	p := startGateway(t)
	var conns []net.Conn
	defer func() { closeAll(conns) }()

	conns = dialMany(t, p.addr, conns, 10)
	g10 := p.goroutines()

	conns = dialMany(t, p.addr, conns, 1000)
	h1000 := p.heapInuse()

	base := p.fds() - len(conns)
	conns = dialMany(t, p.addr, conns, 2000)
	fds := p.fds()
	t.Logf("fds with 2000 connections: %d (%d not connections)", fds, base)
	if fds > 2000+32 {
		t.Errorf("%d fds for 2000 connections: more than one fd per connection", fds)
	}

	conns = dialMany(t, p.addr, conns, 5000)
	g5000 := p.goroutines()
	h5000 := p.heapInuse()
	t.Logf("goroutines: %d with 10 connections, %d with 5000", g10, g5000)
	if g5000-g10 > 64 {
		t.Errorf("goroutines grew by %d from 10 to 5000 connections", g5000-g10)
	}
	slope := float64(h5000-h1000) / 4000
	t.Logf("heap in use: %d B at 1000, %d B at 5000 connections: %.0f B per connection", h1000, h5000, slope)
	if slope > 1024 {
		t.Errorf("%.0f B of heap per idle connection, want ≤ 1024", slope)
	}
	if got := p.metric("wsgate_conns_open"); got != 5000 {
		t.Errorf("conns_open = %d, want 5000", got)
	}
}

// TestSIGTERMDrainsWith1001: every connected client receives close 1001
// and the process exits 0 within the drain window plus about a second —
// plus, on a loaded machine, the time the same clients took to connect
// (measured in this test: closing 2,000 connections is no more work for
// the server and its clients than opening them).
func TestSIGTERMDrainsWith1001(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	const n = 2000
	const window = 2 * time.Second
	p := startGateway(t, "--drain-window", window.String())
	dialStart := time.Now()
	conns := dialMany(t, p.addr, nil, n)
	defer closeAll(conns)
	slack := 2*time.Second + time.Since(dialStart)

	start := time.Now()
	p.signal(syscall.SIGTERM)

	var wg sync.WaitGroup
	codes := make([]uint16, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = readCloseCode(c, window+slack+5*time.Second)
			c.Close() // as a client does once it has the close frame
		}()
		if i%500 == 499 {
			wg.Wait() // bound live goroutines (the race detector caps them)
		}
	}
	wg.Wait()
	for i, code := range codes {
		if code != 1001 {
			t.Fatalf("connection %d: close code %d, want 1001", i, code)
		}
	}
	select {
	case <-p.exited:
	case <-time.After(window + slack - time.Since(start)):
		t.Fatalf("wsgate still running %v after SIGTERM (window %v, allowed %v more)", time.Since(start), window, slack)
	}
	if p.err != nil {
		t.Fatalf("wsgate exited with %v, want status 0", p.err)
	}
	t.Logf("all %d clients got 1001; exit 0 after %v", n, time.Since(start).Round(time.Millisecond))
}

// readCloseCode reads server frames until a close frame and returns its
// code (0 on error or timeout). It echoes nothing: the server must still
// finish on its own (linger) once it has sent the close.
func readCloseCode(c net.Conn, timeout time.Duration) uint16 {
	c.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	for {
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return 0
		}
		n := int(h[1] & 0x7F)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(c, ext[:]); err != nil {
				return 0
			}
			n = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			return 0 // nothing this test reads is that large
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c, payload); err != nil {
			return 0
		}
		if h[0]&0x0F == 0x8 && n >= 2 {
			return binary.BigEndian.Uint16(payload)
		}
	}
}
