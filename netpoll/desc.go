package netpoll

import (
	"fmt"
	"sync/atomic"

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
// besides a slot in its epoll's fd table.
type Desc struct {
	fd      int32
	state   atomic.Uint32
	pending atomic.Uint32 // events gathered while queued or running
	// tag packs flags (deferrableBit, armedBit, armedWriteBit) with the
	// registration's generation in the loop's epoll (genMask, see epoll),
	// so an idle Desc stays 64 bytes.
	tag  atomic.Uint32
	loop *loop
	h    Handler

	// Timer links, guarded by loop.wheel.mu. tick == 0 means not scheduled.
	tprev, tnext *Desc
	tick         int64
}

// Fd returns the descriptor's fd.
func (d *Desc) Fd() int { return int(d.fd) }

// onEpoll runs on the epoll goroutine: it only records and hands off.
func (d *Desc) onEpoll(ev uint32) {
	if d.tag.Load()&edgeBit == 0 {
		// The one-shot arming is spent: the next Rearm must renew it.
		d.tag.And(^uint32(armedBit | armedWriteBit))
	}
	var e Event
	if ev&(unix.EPOLLIN|unix.EPOLLPRI) != 0 {
		e |= EventRead
	}
	if ev&unix.EPOLLOUT != 0 {
		e |= EventWrite
	}
	if ev&(unix.EPOLLHUP|unix.EPOLLRDHUP|unix.EPOLLERR) != 0 {
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
	deferrable := d.tag.Load()&deferrableBit != 0 || Event(d.pending.Load())&EventHup != 0
	d.loop.queue.push(d, deferrable)
}

// SetDeferrable marks the descriptor's events as deferrable (true) or
// urgent (false, the default). Workers serve urgent descriptors first, so
// that, say, a storm of handshakes does not delay established traffic.
func (d *Desc) SetDeferrable(v bool) {
	if v {
		d.tag.Or(deferrableBit)
	} else {
		d.tag.And(^uint32(deferrableBit))
	}
}

// tag's bits. armedBit: the fd is armed in epoll and no event has spent
// the arming yet (armedWriteBit: with write interest), so a dispatch that
// came from a timer or Notify can end without an epoll_ctl when the
// interest is unchanged: an idle connection's pings and deliveries save
// one system call each. edgeBit: registered edge-triggered for reading
// and writing (RegisterEdge), so the arming is never spent.
const (
	deferrableBit = 1 << 31
	armedBit      = 1 << 30
	armedWriteBit = 1 << 29
	edgeBit       = 1 << 28
	genMask       = edgeBit - 1
)

// generation is the descriptor's registration number in its epoll.
func (d *Desc) generation() uint32 { return d.tag.Load() & genMask }

// setGeneration records a new registration, keeping the deferrable flag.
func (d *Desc) setGeneration(gen uint32) {
	for {
		old := d.tag.Load()
		if d.tag.CompareAndSwap(old, old&^genMask|gen&genMask) {
			return
		}
	}
}

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

// Drained reports whether a read of n bytes into a buffer of size bytes
// leaves nothing for the Handler of an edge-triggered descriptor
// (RegisterEdge) to read now: a short read drains a stream socket, except
// after a hang-up (ev has EventHup), which is reported once and shown only
// by a read of EOF.
func Drained(n, size int, ev Event) bool { return n < size && ev&EventHup == 0 }

// ReadLater asks for another dispatch to go on reading an edge-triggered
// descriptor that a Handler stopped reading before it was Drained: no
// event would report what is left. A hang-up in ev is carried along.
func (d *Desc) ReadLater(ev Event) { d.Notify(EventRead | ev&EventHup) }

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
	t := d.tag.Load()
	if t&edgeBit != 0 || t&armedBit != 0 && (t&armedWriteBit != 0) == write {
		return nil // edge-triggered for both, or still armed as wanted
	}
	ev := uint32(readEvents)
	// Marked armed before epoll_ctl: an event that fires right after it
	// clears the mark (onEpoll), so the mark never outlives the arming.
	if write {
		ev |= unix.EPOLLOUT
		d.tag.Or(armedBit | armedWriteBit)
	} else {
		d.tag.And(^uint32(armedWriteBit))
		d.tag.Or(armedBit)
	}
	if err := d.loop.ep.mod(int(d.fd), d, ev); err != nil {
		return fmt.Errorf("netpoll: rearm fd %d: %w", d.fd, err)
	}
	return nil
}

// Close unregisters the fd, stops its timer and closes the fd. Call it from
// the Handler (or once no worker can run it any more). Del comes before
// close so a recycled fd number can never receive this descriptor's events;
// an event already collected is dropped by its stale generation (epoll).
func (d *Desc) Close() error {
	if d.state.Swap(stateClosed) == stateClosed {
		return nil
	}
	d.StopTimer()
	delErr := d.loop.ep.del(int(d.fd))
	if err := unix.Close(int(d.fd)); err != nil {
		return fmt.Errorf("netpoll: close fd %d: %w", d.fd, err)
	}
	if delErr != nil && delErr != errEpollClosed {
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
	if err := d.loop.ep.del(int(d.fd)); err != nil && err != errEpollClosed {
		return fmt.Errorf("netpoll: unregister fd %d: %w", d.fd, err)
	}
	return nil
}

// Closed reports whether Close has been called.
func (d *Desc) Closed() bool { return d.state.Load() == stateClosed }
