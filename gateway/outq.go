package gateway

import (
	"sync"

	"github.com/wsgate/wsgate/netpoll"
)

// outQueue holds the frames waiting to be written to one connection. Frames
// may be shared with other connections (a fan-out frame is built once), so
// they are never modified: a partial write only advances off.
// A connection has an outQueue only while something is waiting.
type outQueue struct {
	bufs  [][]byte
	off   int // bytes of bufs[0] already written
	bytes int // unwritten bytes in total
}

var outQueuePool = sync.Pool{New: func() any { return new(outQueue) }}

func (q *outQueue) push(b []byte) {
	q.bufs = append(q.bufs, b)
	q.bytes += len(b)
}

// vector fills vec with the unwritten parts of up to len(vec) frames.
func (q *outQueue) vector(vec *[netpoll.MaxIovecs][]byte) [][]byte {
	n := copy(vec[:], q.bufs)
	if n > 0 {
		vec[0] = vec[0][q.off:]
	}
	return vec[:n]
}

// advance drops n written bytes from the front.
func (q *outQueue) advance(n int) {
	q.bytes -= n
	i := 0
	for i < len(q.bufs) && n > 0 {
		rest := len(q.bufs[i]) - q.off
		if n < rest {
			q.off += n
			break
		}
		n -= rest
		q.bufs[i] = nil
		q.off = 0
		i++
	}
	q.bufs = q.bufs[:copy(q.bufs, q.bufs[i:])]
}

// dropUnstarted discards every frame not yet partly written (a partly
// written frame must be finished or the stream would be corrupt).
func (q *outQueue) dropUnstarted() {
	keep := 0
	if q.off > 0 {
		keep = 1
	}
	for i := keep; i < len(q.bufs); i++ {
		q.bufs[i] = nil
	}
	q.bufs = q.bufs[:keep]
	q.bytes = 0
	if keep == 1 {
		q.bytes = len(q.bufs[0]) - q.off
	}
}

func (q *outQueue) empty() bool { return len(q.bufs) == 0 }

// release returns an empty queue to the pool, dropping a large backing array.
func (q *outQueue) release() {
	clear(q.bufs)
	if cap(q.bufs) > 64 {
		q.bufs = nil
	}
	q.bufs, q.off, q.bytes = q.bufs[:0], 0, 0
	outQueuePool.Put(q)
}
