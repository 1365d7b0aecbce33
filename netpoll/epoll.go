package netpoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// errEpollClosed answers registrations on a loop whose epoll instance is
// closed (the Poller is shutting down).
var errEpollClosed = errors.New("netpoll: epoll instance closed")

// epoll is one epoll instance. Its waiting goroutine never blocks a thread
// in epoll_wait: the epoll fd is itself pollable (readable while it has
// ready events), so it is handed to Go's runtime poller, the goroutine parks
// there like any network reader, and epoll_wait is only ever called with a
// zero timeout.
//
// Why not easygo's Epoll, which blocks a thread in epoll_wait(-1): a
// goroutine blocked in a system call keeps its P in the syscall state, and
// the runtime's sysmon takes such a P back after 20 µs, hands it to another
// thread and, having found work, keeps polling every 20 µs instead of
// backing off to 10 ms. With one blocked loop per core that is a constant
// churn of thread wake-ups (64,000 context switches a second in a gateway
// answering 1,000 pings a second; sysmon alone a third of its CPU samples).
//
// Events carry the fd and the registration's generation, so an event
// collected before its descriptor was closed is dropped even if the fd
// number has been reused since (easygo keyed callbacks by fd alone).
type epoll struct {
	fd   int
	file *os.File // owns fd; closing it ends run
	raw  syscall.RawConn

	mu    sync.RWMutex
	descs []*Desc // by fd
	gen   atomic.Uint32
}

// epollWaitEvents is how many events one epoll_wait returns at most.
const epollWaitEvents = 1024

func newEpoll() (*epoll, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	// os.NewFile registers only non-blocking fds with the runtime poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netpoll: epoll fd non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netpoll: epoll fd: %w", err)
	}
	return &epoll{fd: fd, file: f, raw: raw}, nil
}

// add registers fd for events on behalf of d.
func (e *epoll) add(fd int, d *Desc, events uint32) error {
	d.setGeneration(e.gen.Add(1))
	d.tag.Or(armedBit) // before epoll_ctl, as in Desc.mod
	e.put(fd, d)
	if err := e.ctl(unix.EPOLL_CTL_ADD, fd, d.generation(), events); err != nil {
		e.put(fd, nil)
		return err
	}
	return nil
}

// mod re-arms fd with events.
func (e *epoll) mod(fd int, d *Desc, events uint32) error {
	return e.ctl(unix.EPOLL_CTL_MOD, fd, d.generation(), events)
}

// del unregisters fd. Events for it already collected are dropped by run.
func (e *epoll) del(fd int) error {
	e.put(fd, nil)
	return e.ctl(unix.EPOLL_CTL_DEL, fd, 0, 0)
}

// ctl runs epoll_ctl through the file's RawConn, which holds the epoll fd
// open for the call: after close it fails with errEpollClosed instead of
// touching an fd number that may belong to somebody else by then.
func (e *epoll) ctl(op, fd int, gen, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(gen)}
	var err error
	if cerr := e.raw.Control(func(epfd uintptr) { err = unix.EpollCtl(int(epfd), op, fd, &ev) }); cerr != nil {
		return errEpollClosed
	}
	return err
}

func (e *epoll) put(fd int, d *Desc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if fd >= len(e.descs) {
		if d == nil {
			return
		}
		grown := make([]*Desc, max(1024, 2*len(e.descs), fd+1))
		copy(grown, e.descs)
		e.descs = grown
	}
	e.descs[fd] = d
}

// run waits for events and hands each to its descriptor until close, or
// until epoll_wait fails for good (reported to onError).
func (e *epoll) run(onError func(error), harvested *atomic.Int64) {
	b := newEventBuf(epollWaitEvents)
	for {
		var n int
		var werr error
		err := e.raw.Read(func(epfd uintptr) bool {
			n, werr = EpollWait(int(epfd), b.events)
			// Nothing ready: park until the runtime poller sees the
			// epoll fd readable again.
			return n > 0 || werr != nil
		})
		if err != nil { // the file was closed
			return
		}
		if werr != nil {
			onError(fmt.Errorf("netpoll: epoll_wait: %w", werr))
			return
		}
		harvested.Store(monotonic())
		e.dispatch(b, n)
	}
}

// harvest collects what is ready without waiting, for a worker between
// two descriptors (see Poller.work). Several goroutines may harvest one
// epoll instance at once: one-shot arming hands each event to one of them.
func (e *epoll) harvest(b *eventBuf) {
	var n int
	if err := e.raw.Control(func(epfd uintptr) { n, _ = EpollWait(int(epfd), b.events) }); err != nil {
		return // closed
	}
	e.dispatch(b, n)
}

// dispatch hands the first n events of b to their descriptors.
func (e *epoll) dispatch(b *eventBuf, n int) {
	if n <= 0 {
		return
	}
	e.lookup(b.events[:n], b.ready)
	for i, d := range b.ready[:n] {
		if d != nil {
			d.onEpoll(b.events[i].Events)
			b.ready[i] = nil
		}
	}
}

// eventBuf is one epoll_wait's events and their descriptors.
type eventBuf struct {
	events []unix.EpollEvent
	ready  []*Desc
}

func newEventBuf(n int) *eventBuf {
	return &eventBuf{events: make([]unix.EpollEvent, n), ready: make([]*Desc, n)}
}

// lookup resolves a batch of events to their descriptors under one read
// lock, nil for a stale event (its fd was unregistered, perhaps reused).
func (e *epoll) lookup(events []unix.EpollEvent, ready []*Desc) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for i, ev := range events {
		if fd := int(ev.Fd); fd >= 0 && fd < len(e.descs) {
			if d := e.descs[fd]; d != nil && d.generation() == uint32(ev.Pad) {
				ready[i] = d
			}
		}
	}
}

// close ends run; registrations fail with errEpollClosed from now on.
func (e *epoll) close() error {
	if err := e.file.Close(); err != nil {
		return fmt.Errorf("netpoll: close epoll: %w", err)
	}
	return nil
}
