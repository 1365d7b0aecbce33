package hub

import (
	"sync"

	"github.com/wsgate/wsgate/codec"
)

// queue is a shard's FIFO of publications waiting for fan-out. It grows as
// needed: what bounds it is the hub's byte budget (Hub.Deliver), shared by
// all shards, so one hot channel may use all of it. Resync requests
// (Hub.Resync: one per lapse or per publication a broker gave up on) wait
// in it too, never refused for the budget. push never blocks.
type queue struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []*codec.Publication // a ring; len(buf) is a power of two
	head   int
	n      int
	closed bool
	ctrl   []func() // work for the shard worker (repairs); not bounded by the budget
}

// minQueue is a shard queue's size when empty: small, since most shards
// are idle most of the time.
const minQueue = 64

func (q *queue) init() {
	q.buf = make([]*codec.Publication, minQueue)
	q.cond.L = &q.mu
}

// push appends p; it fails only when the queue is closed.
func (q *queue) push(p *codec.Publication) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.buf) {
		q.resize(2 * len(q.buf))
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = p
	q.n++
	q.mu.Unlock()
	q.cond.Signal()
	return true
}

// resize moves the ring into a buffer of size (a power of two ≥ n).
func (q *queue) resize(size int) {
	buf := make([]*codec.Publication, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}

// pushCtrl queues fn for the shard worker. Control work is rare (one per
// repair) and must not be refused, so it is outside the byte budget.
func (q *queue) pushCtrl(fn func()) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.ctrl = append(q.ctrl, fn)
	q.mu.Unlock()
	q.cond.Signal()
}

// popBatch moves up to len(dst) publications into dst and the control work
// into ctrl; with wait it first waits for either. It returns 0 and no
// control work when there is none (with wait: once the queue is closed and
// empty). A ring grown by a burst shrinks again once mostly empty.
func (q *queue) popBatch(dst []*codec.Publication, ctrl *[]func(), wait bool) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for wait && q.n == 0 && len(q.ctrl) == 0 && !q.closed {
		q.cond.Wait()
	}
	*ctrl = append(*ctrl, q.ctrl...)
	clear(q.ctrl)
	q.ctrl = q.ctrl[:0]
	k := 0
	for k < len(dst) && q.n > 0 {
		dst[k] = q.buf[q.head]
		q.buf[q.head] = nil
		q.head = (q.head + 1) & (len(q.buf) - 1)
		q.n--
		k++
	}
	if len(q.buf) > minQueue && q.n < len(q.buf)/8 {
		q.resize(max(minQueue, len(q.buf)/4))
	}
	return k
}

// pending reports whether publications or control work wait.
func (q *queue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n > 0 || len(q.ctrl) > 0
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
