package netpoll

import (
	"sync"
	"sync/atomic"
)

// readyQueue is the hand-off between a loop's epoll goroutine (and timers)
// and its workers. push never blocks for longer than a short critical
// section: the queue grows instead. It cannot grow without bound because a
// descriptor is queued at most once at a time (see Desc.state), so its length
// never exceeds the number of registered descriptors.
//
// It has two classes. Urgent descriptors (established connections with
// something to read or write) are served before deferrable ones
// (handshakes, the listener, peers that hung up): a storm of new or closing
// connections then waits behind the traffic of the established ones
// instead of delaying it. So that deferrable work is never starved, every
// lowEvery-th pop takes a deferrable descriptor when one waits.
type readyQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	urgent ring
	low    ring
	streak int // urgent pops in a row while deferrable ones waited
	closed bool
	// lowRunning counts deferrable descriptors being served; at most
	// lowLimit at once, so that a storm of deferrable work leaves the
	// other workers, and their cores, to the urgent (see Config).
	lowRunning, lowLimit int
	// waiting mirrors urgent.n + low.n for readers without the lock.
	waiting atomic.Int32
}

// lowEvery bounds how many urgent descriptors are served in a row while a
// deferrable one waits.
const lowEvery = 8

// ring is a growable FIFO of descriptors.
type ring struct {
	buf  []*Desc
	head int
	n    int
}

func (r *ring) push(d *Desc) {
	if r.n == len(r.buf) {
		next := make([]*Desc, max(256, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			next[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = next, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = d
	r.n++
}

func (r *ring) pop() *Desc {
	d := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return d
}

func newReadyQueue(lowLimit int) *readyQueue {
	q := &readyQueue{lowLimit: max(1, lowLimit)}
	q.cond.L = &q.mu
	return q
}

func (q *readyQueue) push(d *Desc, deferrable bool) {
	q.mu.Lock()
	if deferrable {
		q.low.push(d)
	} else {
		q.urgent.push(d)
	}
	q.waiting.Add(1)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop blocks until a descriptor is ready or the queue is closed (nil),
// and says whether it was a deferrable one; a deferrable one must be
// followed by doneLow once served.
func (q *readyQueue) pop() (d *Desc, deferrable bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		lowOK := q.low.n > 0 && (q.lowRunning < q.lowLimit || q.closed) // closing: drain
		switch {
		case q.urgent.n > 0 && (!lowOK || q.streak < lowEvery):
			if lowOK {
				q.streak++
			}
			q.waiting.Add(-1)
			return q.urgent.pop(), false
		case lowOK:
			q.streak = 0
			q.lowRunning++
			q.waiting.Add(-1)
			return q.low.pop(), true
		case q.closed:
			return nil, false
		}
		q.cond.Wait()
	}
}

// doneLow ends the service of a deferrable descriptor.
func (q *readyQueue) doneLow() {
	q.mu.Lock()
	q.lowRunning--
	wake := q.low.n > 0
	q.mu.Unlock()
	if wake {
		q.cond.Signal()
	}
}

func (q *readyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
