package netpoll

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// blocker is a Handler that holds its worker until released.
type blocker struct {
	desc    Desc
	entered chan struct{}
	release chan struct{}
}

func (b *blocker) HandleEvent(_ *Worker, _ Event) {
	close(b.entered)
	<-b.release
	_ = b.desc.Close()
}

// TestProbe: a probe is answered while the loop runs, times out while the
// loop's only worker is stuck in a handler, is answered again once the
// worker is free, and is refused after Close without touching the closed
// eventfd.
func TestProbe(t *testing.T) {
	defer goleak.VerifyNone(t)
	p, err := New(Config{Loops: 1, WorkersPerLoop: 1})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			p.Close()
		}
	}()
	probe := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return p.Probe(ctx)
	}
	if err := probe(10 * time.Second); err != nil {
		t.Fatalf("probe of an idle poller: %v", err)
	}

	// Many overlapping probes share dispatches and all get an answer.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() { errs <- probe(10 * time.Second) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent probe: %v", err)
		}
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	b := &blocker{entered: make(chan struct{}), release: make(chan struct{})}
	if err := p.Register(&b.desc, fds[0], b, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-b.entered // the loop's only worker is now stuck
	if err := probe(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probe of a stuck loop: %v, want a deadline error", err)
	}
	close(b.release)
	if err := probe(10 * time.Second); err != nil {
		t.Fatalf("probe after the worker came back: %v", err)
	}

	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	if err := probe(time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("probe after Close: %v, want ErrClosed", err)
	}
	if !p.loops[0].probe.closed {
		t.Fatal("probe eventfd left open after Close")
	}
}
