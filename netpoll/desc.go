package netpoll

import (
	"fmt"
	"sync/atomic"

	easy "github.com/mailru/easygo/netpoll"
	"golang.org/x/sys/unix"
)

// Event is a set of reasons for which a Handler is called.
type Event uint32

const (
	// EventRead: the fd is readable (or has hit EOF).
	EventRead Event = 1 << iota
	// EventWrite: the fd is writable; only reported when armed with it.
	EventWrite
	// EventHup: the peer hung up or the socket has an error.
	EventHup
	// EventTimer: the descriptor's timer expired.
	EventTimer
	// EventNotify: somebody called Notify.
	EventNotify
)

// Handler receives the events of one descriptor. HandleEvent runs on a worker
// goroutine and never concurrently with itself for the same descriptor. It
// must not block: all I/O on the fd is non-blocking. Before returning it must
// either call Desc.Rearm or Desc.Close, otherwise the descriptor is never
// dispatched again.
type Handler interface {
	HandleEvent(w *Worker, ev Event)
}

// Dispatch states. A descriptor is queued at most once: whoever moves it from
// idle to queued pushes it to the ready queue; the worker that runs it moves
// it back to idle in Rearm.
const (
	stateIdle uint32 = iota
	stateQueued
	stateClosed
)

// Desc is one registered fd. It is meant to be embedded by value in the
// user's per-connection struct, so registering costs no extra allocation
// besides easygo's callback entry.
type Desc struct {
	fd       int32
	state    atomic.Uint32
	pending  atomic.Uint32 // events gathered while queued or running
	deferred atomic.Bool   // served after urgent descriptors (SetDeferrable)
	loop     *loop
	h        Handler

	// Timer links, guarded by loop.wheel.mu. tick == 0 means not scheduled.
	tprev, tnext *Desc
	tick         int64
}

// Fd returns the descriptor's fd.
func (d *Desc) Fd() int { return int(d.fd) }

// onEpoll runs on the epoll goroutine: it only records and hands off.
func (d *Desc) onEpoll(ev easy.EpollEvent) {
	if ev&0x20 != 0 { // easygo's _EPOLLCLOSED: the poller is shutting down.
		return
	}
	var e Event
	if ev&(easy.EPOLLIN|easy.EPOLLPRI) != 0 {
		e |= EventRead
	}
	if ev&easy.EPOLLOUT != 0 {
		e |= EventWrite
	}
	if ev&(easy.EPOLLHUP|easy.EPOLLRDHUP|easy.EPOLLERR) != 0 {
		e |= EventHup
	}
	d.Notify(e)
}

// Notify records ev and schedules the descriptor on a worker unless it is
// already queued or running (then the running worker picks ev up when it
// re-arms). Safe from any goroutine; never blocks.
func (d *Desc) Notify(ev Event) {
	d.pending.Or(uint32(ev))
	if d.state.CompareAndSwap(stateIdle, stateQueued) {
		d.schedule()
	}
}

// schedule queues the descriptor: deferrable work (SetDeferrable, or a
// peer that hung up — nobody waits for that answer) goes after the urgent.
func (d *Desc) schedule() {
	deferrable := d.deferred.Load() || Event(d.pending.Load())&EventHup != 0
	d.loop.queue.push(d, deferrable)
}

// SetDeferrable marks the descriptor's events as deferrable (true) or
// urgent (false, the default). Workers serve urgent descriptors first, so
// that, say, a storm of handshakes does not delay established traffic.
func (d *Desc) SetDeferrable(v bool) { d.deferred.Store(v) }

// takePending returns and clears the events gathered so far.
func (d *Desc) takePending() Event { return Event(d.pending.Swap(0)) }

// Rearm ends the current dispatch and arms the fd for reading, and for
// writing too when write is true. It must be called by the Handler, under
// the same lock that callers of ArmIfIdle hold, so that the two never race.
func (d *Desc) Rearm(write bool) error {
	if !d.state.CompareAndSwap(stateQueued, stateIdle) {
		return nil // closed
	}
	err := d.mod(write)
	// Events that arrived while we ran (timers, Notify) are not re-reported
	// by the kernel: schedule them now.
	if d.pending.Load() != 0 && d.state.CompareAndSwap(stateIdle, stateQueued) {
		d.schedule()
	}
	return err
}

// Park ends the current dispatch without arming the fd: only the timer or
// Notify will dispatch the descriptor again (used to back off).
func (d *Desc) Park() {
	d.state.CompareAndSwap(stateQueued, stateIdle)
	if d.pending.Load() != 0 && d.state.CompareAndSwap(stateIdle, stateQueued) {
		d.schedule()
	}
}

// ArmIfIdle adds write interest to an idle (armed, not dispatched) fd. When
// the descriptor is queued or running, the running Handler's Rearm decides
// instead. Must be called under the Handler's lock (see Rearm).
func (d *Desc) ArmIfIdle(write bool) error {
	if d.state.Load() != stateIdle {
		return nil
	}
	return d.mod(write)
}

func (d *Desc) mod(write bool) error {
	ev := easy.EpollEvent(easy.EPOLLIN | easy.EPOLLRDHUP | easy.EPOLLONESHOT)
	if write {
		ev |= easy.EPOLLOUT
	}
	if err := d.loop.ep.Mod(int(d.fd), ev); err != nil {
		return fmt.Errorf("netpoll: rearm fd %d: %w", d.fd, err)
	}
	return nil
}

// Close unregisters the fd, stops its timer and closes the fd. Call it from
// the Handler (or once no worker can run it any more). Del comes before
// close so a recycled fd number can never receive this descriptor's events;
// a callback that easygo already collected is dropped by the closed state.
func (d *Desc) Close() error {
	if d.state.Swap(stateClosed) == stateClosed {
		return nil
	}
	d.StopTimer()
	delErr := d.loop.ep.Del(int(d.fd))
	if err := unix.Close(int(d.fd)); err != nil {
		return fmt.Errorf("netpoll: close fd %d: %w", d.fd, err)
	}
	if delErr != nil && delErr != easy.ErrClosed {
		return fmt.Errorf("netpoll: unregister fd %d: %w", d.fd, delErr)
	}
	return nil
}

// Detach unregisters the fd without closing it, for fds owned by somebody
// else (a net.Listener's socket).
func (d *Desc) Detach() error {
	if d.state.Swap(stateClosed) == stateClosed {
		return nil
	}
	d.StopTimer()
	if err := d.loop.ep.Del(int(d.fd)); err != nil && err != easy.ErrClosed {
		return fmt.Errorf("netpoll: unregister fd %d: %w", d.fd, err)
	}
	return nil
}

// Closed reports whether Close has been called.
func (d *Desc) Closed() bool { return d.state.Load() == stateClosed }
