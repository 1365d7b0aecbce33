package netpoll

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// edgeConn is a Handler for an edge-triggered descriptor that reads at
// most chunk bytes per dispatch (so it must ask for more itself) and, when
// told, writes a large buffer as far as the socket takes it.
type edgeConn struct {
	desc    Desc
	chunk   int
	mu      sync.Mutex
	read    []byte
	eof     bool
	pending []byte // still to write
	writes  atomic.Int32
	inside  atomic.Int32
	overlap atomic.Bool
}

func (c *edgeConn) HandleEvent(w *Worker, ev Event) {
	if c.inside.Add(1) > 1 {
		c.overlap.Store(true)
	}
	if ev&(EventRead|EventHup) != 0 {
		n, err := Read(c.desc.Fd(), w.Scratch[:c.chunk])
		c.mu.Lock()
		switch {
		case err == unix.EAGAIN:
		case n <= 0:
			c.eof = true
		default:
			c.read = append(c.read, w.Scratch[:n]...)
			if !Drained(n, c.chunk, ev) {
				c.desc.ReadLater(ev)
			}
		}
		c.mu.Unlock()
	}
	if ev&(EventWrite|EventNotify) != 0 {
		c.flush()
	}
	c.inside.Add(-1)        // before Rearm: from then on another worker may run it
	_ = c.desc.Rearm(false) // never asks for write interest: edge mode has it
}

func (c *edgeConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) > 0 {
		n, err := unix.Write(c.desc.Fd(), c.pending)
		if err != nil {
			return // EAGAIN: an EventWrite comes once the socket drains
		}
		c.writes.Add(1)
		c.pending = c.pending[n:]
	}
}

func (c *edgeConn) state() (read []byte, eof bool, left int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.read...), c.eof, len(c.pending)
}

func edgePair(t *testing.T, chunk int) (*edgeConn, int) {
	t.Helper()
	p, fds := socketpairPoller(t)
	c := &edgeConn{chunk: chunk}
	if err := p.RegisterEdge(&c.desc, fds[0], c, time.Time{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Close()
		_ = c.desc.Close()
		unix.Close(fds[1])
	})
	return c, fds[1]
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
	}
}

// TestEdgeReadsEverything: an edge-triggered descriptor whose handler
// reads a little per dispatch and asks for more gets every byte, in order,
// never in two dispatches at once, and then the hang-up.
func TestEdgeReadsEverything(t *testing.T) {
	c, peer := edgePair(t, 7)
	var want []byte
	for i := range 300 {
		b := bytes.Repeat([]byte{byte(i)}, 1+i%50)
		want = append(want, b...)
		if _, err := unix.Write(peer, b); err != nil {
			t.Fatal(err)
		}
		if i%30 == 0 {
			time.Sleep(time.Millisecond) // some bursts, some singles
		}
	}
	unix.Shutdown(peer, unix.SHUT_WR)
	defer func() { read, eof, _ := c.state(); t.Logf("read %d of %d, eof %v", len(read), len(want), eof) }()
	eventually(t, "all bytes and EOF", func() bool { read, eof, _ := c.state(); return eof && len(read) == len(want) })
	if read, _, _ := c.state(); !bytes.Equal(read, want) {
		t.Fatal("bytes differ from what was sent")
	}
	if c.overlap.Load() {
		t.Fatal("handler ran twice at once")
	}
}

// TestEdgeWriteInterestWithoutRearm: a write that fills the socket is
// resumed by an EventWrite once the peer reads, although the handler never
// asked for write interest (Rearm(false), no ArmIfIdle).
func TestEdgeWriteInterestWithoutRearm(t *testing.T) {
	c, peer := edgePair(t, 4096)
	const size = 4 << 20 // far more than the socket buffers hold
	c.mu.Lock()
	c.pending = bytes.Repeat([]byte("x"), size)
	c.mu.Unlock()
	c.desc.Notify(EventNotify)
	eventually(t, "socket full", func() bool { _, _, left := c.state(); return left > 0 && left < size })
	got := 0
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(10 * time.Second)
	for got < size {
		n, err := unix.Read(peer, buf)
		if err == unix.EAGAIN {
			if time.Now().After(deadline) {
				_, _, left := c.state()
				t.Fatalf("stalled: read %d of %d, %d still queued", got, size, left)
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if c.writes.Load() < 2 {
		t.Fatalf("%d writes: the socket never filled", c.writes.Load())
	}
}
