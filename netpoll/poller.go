package netpoll

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config sizes a Poller. Zero values take the defaults.
type Config struct {
	// Loops is the number of epoll instances (default: GOMAXPROCS).
	Loops int
	// WorkersPerLoop × Loops is the number of worker goroutines (default
	// 2 per loop), which serve every loop's descriptors from one queue.
	// Handlers never block, so a few per core suffice.
	WorkersPerLoop int
	// DeferrableWorkers bounds how many workers serve deferrable
	// descriptors (handshakes, hang-ups) at once (default: half the
	// loops, at least 1): however many arrive, the other workers stay free
	// for established traffic, and the gateway leaves the cores it does
	// not need for that to the rest of the host.
	DeferrableWorkers int
	// ScratchBytes is the size of each worker's read buffer (default 64 KiB).
	ScratchBytes int
	// TimerTick is the timer resolution (default 100 ms).
	TimerTick time.Duration
	// OnError receives the error that stops a loop's epoll_wait for good
	// (default: ignored).
	OnError func(error)
}

func (c Config) withDefaults() Config {
	if c.Loops <= 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	if c.WorkersPerLoop <= 0 {
		c.WorkersPerLoop = 2
	}
	if c.DeferrableWorkers <= 0 {
		c.DeferrableWorkers = max(1, c.Loops/2)
	}
	if c.ScratchBytes <= 0 {
		c.ScratchBytes = 64 << 10
	}
	if c.TimerTick <= 0 {
		c.TimerTick = 100 * time.Millisecond
	}
	if c.OnError == nil {
		c.OnError = func(error) {}
	}
	return c
}

// wheelSlots × TimerTick is one revolution of the timing wheel (102 s at the
// default tick): longer than the usual ping interval, so most timers expire
// on their first visit.
const wheelSlots = 1024

// Worker is the context a Handler runs in. Scratch is the worker's own read
// buffer: valid only during HandleEvent.
type Worker struct {
	Scratch []byte
	events  *eventBuf // for harvesting (see work)
}

// Poller owns the epoll instances, their workers and the timer goroutine.
type Poller struct {
	loops []*loop
	// queue is shared by every loop and every worker: a worker serves
	// whichever descriptor is most urgent, whatever its loop, so a loop
	// whose own share of the work is light never waits behind a busy one.
	queue *readyQueue
	next  atomic.Uint32
	stop  chan struct{}
	// wake restarts the sleeping timer goroutine: a wheel's first timer.
	// sleeps counts the times it stopped ticking (tests).
	wake   chan struct{}
	sleeps atomic.Int64
	wg     sync.WaitGroup
	once   sync.Once
}

type loop struct {
	ep        *epoll
	harvested atomic.Int64 // monotonic ns of the last collection of events
	queue     *readyQueue  // the Poller's
	wheel     *wheel
	probe     prober // see Poller.Probe
}

// readEvents is what a descriptor is armed for: level-triggered, one-shot
// (Rearm arms it again), and told when the peer shuts its side down.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// edgeEvents is what an edge-triggered descriptor (RegisterEdge) is
// registered for, once: each change of readability or writability is
// reported, so nothing is ever re-armed.
const edgeEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// noDeadline registers a descriptor without a timer.
var noDeadline time.Time

// New starts a Poller: Loops epoll goroutines, Loops×WorkersPerLoop workers
// and one timer goroutine. Close stops them all.
func New(cfg Config) (*Poller, error) {
	cfg = cfg.withDefaults()
	p := &Poller{stop: make(chan struct{}), wake: make(chan struct{}, 1), queue: newReadyQueue(cfg.DeferrableWorkers)}
	start := time.Now()
	for i := 0; i < cfg.Loops; i++ {
		ep, err := newEpoll()
		if err != nil {
			p.closeLoops()
			p.closeProbes()
			return nil, err
		}
		l := &loop{ep: ep, queue: p.queue, wheel: newWheel(start, cfg.TimerTick, wheelSlots, p.wake)}
		p.loops = append(p.loops, l)
		if err := l.startProbe(); err != nil {
			p.closeLoops()
			p.closeProbes()
			return nil, err
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ep.run(cfg.OnError, &l.harvested)
		}()
		for j := 0; j < cfg.WorkersPerLoop; j++ {
			p.wg.Add(1)
			go p.work(&Worker{Scratch: make([]byte, cfg.ScratchBytes), events: newEventBuf(harvestEvents)})
		}
	}
	p.wg.Add(1)
	go p.runTimers(cfg.TimerTick)
	return p, nil
}

// Register adds fd to one of the epoll instances, armed for reading, with
// h as its Handler, and schedules its timer at deadline unless that is zero
// (before the fd can fire, so the first event already sees the timer).
// d is usually embedded in the caller's connection struct; it must not be
// moved or reused until Close.
func (p *Poller) Register(d *Desc, fd int, h Handler, deadline time.Time) error {
	return p.loops[p.next.Add(1)%uint32(len(p.loops))].register(d, fd, h, deadline, false)
}

// RegisterEdge is Register for a stream socket whose Handler reads until
// the socket is drained: the fd is registered once, edge-triggered, for
// reading and writing, so no dispatch ever ends in an epoll_ctl (an idle
// connection's ping round trip or a request costs one system call less).
// In exchange the Handler must, on EventRead, read until it is Drained (or
// EAGAIN) — or call ReadLater to continue in a later dispatch — since no
// further event comes for data already there.
// EventWrite may come with any event; it is reported after a write that
// filled the socket (EAGAIN or short) once the socket takes bytes again,
// so ArmIfIdle and Rearm's write argument are not needed.
func (p *Poller) RegisterEdge(d *Desc, fd int, h Handler, deadline time.Time) error {
	return p.loops[p.next.Add(1)%uint32(len(p.loops))].register(d, fd, h, deadline, true)
}

func (l *loop) register(d *Desc, fd int, h Handler, deadline time.Time, edge bool) error {
	d.fd, d.loop, d.h = int32(fd), l, h
	d.pending.Store(0) // a reused Desc forgets its last registration's events
	d.state.Store(stateIdle)
	events := uint32(readEvents)
	if edge {
		d.tag.Or(edgeBit)
		events = edgeEvents
	} else {
		d.tag.And(^uint32(edgeBit))
	}
	if !deadline.IsZero() {
		d.SetTimer(deadline)
	}
	if err := l.ep.add(fd, d, events); err != nil {
		d.StopTimer()
		d.state.Store(stateClosed)
		return fmt.Errorf("netpoll: register fd %d: %w", fd, err)
	}
	return nil
}

// harvestEvery bounds how stale a busy loop's view of its epoll instance
// gets; harvestEvents is how many events a worker collects at once.
const (
	harvestEvery  = 100 * time.Microsecond
	harvestEvents = 128
)

func (p *Poller) work(w *Worker) {
	defer p.wg.Done()
	for {
		d, deferrable := p.queue.pop()
		if d == nil {
			return
		}
		if ev := d.takePending(); !d.Closed() {
			d.h.HandleEvent(w, ev)
		}
		// The loop's goroutine waits in Go's runtime poller, which the
		// scheduler consults only when it has nothing else to run (or
		// every 10 ms from sysmon): while the workers are kept busy, by a
		// storm of handshakes say, an established client's ping would
		// wait that long. So a busy worker collects ready events itself,
		// at most every harvestEvery per loop, and urgent ones are served
		// before the next deferrable descriptor. A worker about to wait
		// for work leaves it to the scheduler, which then polls anyway:
		// a lightly loaded gateway pays no extra epoll_wait per event.
		if p.queue.waiting.Load() > 0 {
			p.harvestStale(w)
		}
		if deferrable {
			p.queue.doneLow()
			// Let other goroutines (the hub's shard workers) in between
			// two deferrable descriptors.
			runtime.Gosched()
		}
	}
}

// harvestStale collects the ready events of every loop that nobody has
// collected from for harvestEvery.
func (p *Poller) harvestStale(w *Worker) {
	now := monotonic()
	for _, l := range p.loops {
		if last := l.harvested.Load(); now-last >= int64(harvestEvery) && l.harvested.CompareAndSwap(last, now) {
			l.ep.harvest(w.events)
		}
	}
}

// monotonic is nanoseconds on the monotonic clock since the package's start.
func monotonic() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()

// runTimers advances every loop's wheel once per tick while any of them
// holds a timer, and sleeps while none does (see wheel).
func (p *Poller) runTimers(tick time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			armed := false
			for _, l := range p.loops {
				armed = l.wheel.advance(now) || armed
			}
			if armed {
				continue
			}
			// A timer set since its wheel was advanced has already
			// signalled wake, so this does not sleep through it.
			t.Stop()
			p.sleeps.Add(1)
			select {
			case <-p.stop:
				return
			case <-p.wake:
				t.Reset(tick)
			}
		}
	}
}

// Close stops the timer goroutine, the epoll goroutines and, once their
// queues are drained, the workers. Descriptors still registered are not
// closed: their owner closes them (the gateway drains connections first).
func (p *Poller) Close() error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		err = p.closeLoops()
		p.wg.Wait()
		err = errors.Join(err, p.closeProbes())
	})
	return err
}

// closeProbes closes the loops' probe eventfds (their epoll instances are
// closed first, so this only closes the fds).
func (p *Poller) closeProbes() error {
	var errs []error
	for _, l := range p.loops {
		errs = append(errs, l.probe.close())
	}
	return errors.Join(errs...)
}

func (p *Poller) closeLoops() error {
	var errs []error
	for _, l := range p.loops {
		if err := l.ep.close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.queue.close()
	return errors.Join(errs...)
}
