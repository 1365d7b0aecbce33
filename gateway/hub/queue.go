package hub

import (
	"sync"

	"github.com/wsgate/wsgate/codec"
)

// queue is a shard's bounded FIFO of publications. push never blocks: a
// full queue refuses, so the broker's reader is never stalled by a slow
// fan-out (the refusal is counted and is a gap recovery can repair).
type queue struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []*codec.Publication
	head   int
	n      int
	closed bool
	ctrl   []func() // work for the shard worker (gap fills); not bounded by depth
}

func (q *queue) init(depth int) {
	q.buf = make([]*codec.Publication, depth)
	q.cond.L = &q.mu
}

func (q *queue) push(p *codec.Publication) bool {
	q.mu.Lock()
	if q.n == len(q.buf) || q.closed {
		q.mu.Unlock()
		return false
	}
	q.buf[(q.head+q.n)%len(q.buf)] = p
	q.n++
	q.mu.Unlock()
	q.cond.Signal()
	return true
}

// pushCtrl queues fn for the shard worker. Control work is rare (one per
// detected gap) and must not be refused, so it bypasses the depth bound.
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

// popBatch waits for publications or control work and moves up to len(dst)
// publications into dst and the control work into ctrl. It returns 0 and no
// control work once the queue is closed and empty.
func (q *queue) popBatch(dst []*codec.Publication, ctrl *[]func()) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n == 0 && len(q.ctrl) == 0 && !q.closed {
		q.cond.Wait()
	}
	*ctrl = append(*ctrl, q.ctrl...)
	clear(q.ctrl)
	q.ctrl = q.ctrl[:0]
	k := 0
	for k < len(dst) && q.n > 0 {
		dst[k] = q.buf[q.head]
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		k++
	}
	return k
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
