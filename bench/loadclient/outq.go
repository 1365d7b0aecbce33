package loadclient

import "github.com/wsgate/wsgate/netpoll"

// outQueue holds the frames waiting for one socket; a partial write only
// advances off, so frames are never modified. It holds no array while empty.
type outQueue struct {
	bufs  [][]byte
	off   int // bytes of bufs[0] already written
	bytes int // unwritten bytes in total
}

func (q *outQueue) push(b []byte) {
	q.bufs = append(q.bufs, b)
	q.bytes += len(b)
}

func (q *outQueue) empty() bool { return len(q.bufs) == 0 }

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
		q.off = 0
		i++
	}
	if i == len(q.bufs) {
		q.reset()
		return
	}
	q.bufs = q.bufs[:copy(q.bufs, q.bufs[i:])]
	clear(q.bufs[len(q.bufs):cap(q.bufs)][:i])
}

// reset drops everything, releasing the array.
func (q *outQueue) reset() { *q = outQueue{} }
