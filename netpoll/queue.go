package netpoll

import "sync"

// readyQueue is the hand-off between a loop's epoll goroutine (and timers)
// and its workers. push never blocks for longer than a short critical
// section: the queue grows instead. It cannot grow without bound because a
// descriptor is queued at most once at a time (see Desc.state), so its length
// never exceeds the number of registered descriptors.
type readyQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []*Desc // ring buffer
	head   int
	n      int
	closed bool
}

func newReadyQueue() *readyQueue {
	q := &readyQueue{buf: make([]*Desc, 256)}
	q.cond.L = &q.mu
	return q
}

func (q *readyQueue) push(d *Desc) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = d
	q.n++
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *readyQueue) grow() {
	next := make([]*Desc, 2*len(q.buf))
	for i := 0; i < q.n; i++ {
		next[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = next, 0
}

// pop blocks until a descriptor is ready or the queue is closed (nil).
func (q *readyQueue) pop() *Desc {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.n == 0 {
		return nil
	}
	d := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return d
}

func (q *readyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
