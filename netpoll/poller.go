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
	// WorkersPerLoop is the number of worker goroutines per epoll instance
	// (default 2). Handlers never block, so a few per core suffice.
	WorkersPerLoop int
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
}

// Poller owns the epoll instances, their workers and the timer goroutine.
type Poller struct {
	loops []*loop
	next  atomic.Uint32
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

type loop struct {
	ep    *epoll
	queue *readyQueue
	wheel *wheel
	probe prober // see Poller.Probe
}

// readEvents is what a descriptor is armed for: level-triggered, one-shot
// (Rearm arms it again), and told when the peer shuts its side down.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// noDeadline registers a descriptor without a timer.
var noDeadline time.Time

// New starts a Poller: Loops epoll goroutines, Loops×WorkersPerLoop workers
// and one timer goroutine. Close stops them all.
func New(cfg Config) (*Poller, error) {
	cfg = cfg.withDefaults()
	p := &Poller{stop: make(chan struct{})}
	start := time.Now()
	for i := 0; i < cfg.Loops; i++ {
		ep, err := newEpoll()
		if err != nil {
			p.closeLoops()
			p.closeProbes()
			return nil, err
		}
		l := &loop{ep: ep, queue: newReadyQueue(), wheel: newWheel(start, cfg.TimerTick, wheelSlots)}
		p.loops = append(p.loops, l)
		if err := l.startProbe(); err != nil {
			p.closeLoops()
			p.closeProbes()
			return nil, err
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ep.run(cfg.OnError)
		}()
		for j := 0; j < cfg.WorkersPerLoop; j++ {
			p.wg.Add(1)
			go p.work(l, &Worker{Scratch: make([]byte, cfg.ScratchBytes)})
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
	return p.loops[p.next.Add(1)%uint32(len(p.loops))].register(d, fd, h, deadline)
}

func (l *loop) register(d *Desc, fd int, h Handler, deadline time.Time) error {
	d.fd, d.loop, d.h = int32(fd), l, h
	d.state.Store(stateIdle)
	if !deadline.IsZero() {
		d.SetTimer(deadline)
	}
	if err := l.ep.add(fd, d, readEvents); err != nil {
		d.StopTimer()
		d.state.Store(stateClosed)
		return fmt.Errorf("netpoll: register fd %d: %w", fd, err)
	}
	return nil
}

func (p *Poller) work(l *loop, w *Worker) {
	defer p.wg.Done()
	for {
		d, deferrable := l.queue.pop()
		if d == nil {
			return
		}
		if ev := d.takePending(); !d.Closed() {
			d.h.HandleEvent(w, ev)
		}
		if deferrable {
			// Workers that always find more work never block, so Go's
			// scheduler would run the epoll goroutines (back from
			// epoll_wait with an urgent event) only when it preempts a
			// worker, up to 10 ms later. Yield after each deferrable
			// descriptor so urgent events are picked up within one.
			runtime.Gosched()
		}
	}
}

func (p *Poller) runTimers(tick time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			for _, l := range p.loops {
				l.wheel.advance(now)
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
		l.queue.close()
	}
	return errors.Join(errs...)
}
