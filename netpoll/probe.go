package netpoll

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed answers a Probe of a closed Poller.
var ErrClosed = errors.New("netpoll: poller closed")

// prober is a loop's liveness probe: an eventfd registered with the loop
// like a connection. Writing to it travels the whole path a client's bytes
// take — epoll_wait on the loop's goroutine, the ready queue, a worker — so
// a loop whose epoll goroutine or every worker is stuck never answers.
type prober struct {
	desc Desc

	mu     sync.Mutex
	done   chan struct{} // closed by the next dispatch; nil when no probe waits
	closed bool          // the eventfd is closed: its number may be reused
}

// startProbe registers l's probe eventfd with l.
func (l *loop) startProbe() error {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("netpoll: eventfd: %w", err)
	}
	if err := l.register(&l.probe.desc, fd, &l.probe, noDeadline, false); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}

// wait asks the loop to dispatch the probe and returns a channel closed when
// it has. Probes that overlap share one dispatch (and one channel), so any
// number of them costs one eventfd write at a time.
func (p *prober) wait() (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.done != nil {
		return p.done, nil
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := Write(p.desc.Fd(), one[:]); err != nil {
		return nil, fmt.Errorf("netpoll: probe write: %w", err)
	}
	p.done = make(chan struct{})
	return p.done, nil
}

// close closes the eventfd once no Probe can write to it any more.
func (p *prober) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.desc.loop == nil { // never registered
		return nil
	}
	p.closed = true
	return p.desc.Close()
}

// HandleEvent runs on one of the loop's workers: it empties the eventfd and
// answers the waiting probes.
func (p *prober) HandleEvent(_ *Worker, _ Event) {
	var buf [8]byte
	_, _ = Read(p.desc.Fd(), buf[:]) // EAGAIN: a spurious wake-up, nothing to read
	p.mu.Lock()
	if p.done != nil {
		close(p.done)
		p.done = nil
	}
	p.mu.Unlock()
	_ = p.desc.Rearm(false) // fails only once the poller is closing
}

// Probe checks that every event loop still dispatches events: it wakes each
// loop through its epoll instance and waits until one of the loop's workers
// has run, or until ctx is done. It is cheap (one eventfd write per loop)
// and safe to call from any goroutine, concurrently.
func (p *Poller) Probe(ctx context.Context) error {
	select {
	case <-p.stop:
		return ErrClosed
	default:
	}
	waits := make([]<-chan struct{}, len(p.loops))
	for i, l := range p.loops {
		ch, err := l.probe.wait()
		if err != nil {
			return err
		}
		waits[i] = ch
	}
	for i, ch := range waits {
		select {
		case <-ch:
		case <-p.stop:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("netpoll: event loop %d did not answer its probe: %w", i, ctx.Err())
		}
	}
	return nil
}
