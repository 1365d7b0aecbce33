package netpoll

import (
	"slices"

	"golang.org/x/sys/unix"
)

// WriteQueue holds the buffers waiting to be written to one non-blocking
// fd. Buffers may be shared with other queues (a fan-out frame is built
// once), so they are never modified: a partial write only advances an
// offset. Flush writes MaxIovecs buffers at a time, small ones copied into
// one write, large ones with writev.
//
// A WriteQueue is not safe for concurrent use; its owner locks.
type WriteQueue struct {
	bufs    [][]byte
	off     int // bytes of bufs[0] already written
	bytes   int // unwritten bytes in total
	refused int // bytes left when the owner last offered the queue to its fd (Offered)
}

// Push appends b.
func (q *WriteQueue) Push(b []byte) {
	q.bufs = append(q.bufs, b)
	q.bytes += len(b)
}

// PushAll appends bufs with at most one growth of the queue's array: a
// run of frames for one socket costs one allocation at most, not one per
// doubling.
func (q *WriteQueue) PushAll(bufs [][]byte) {
	q.bufs = append(slices.Grow(q.bufs, len(bufs)), bufs...)
	for _, b := range bufs {
		q.bytes += len(b)
	}
}

// Empty reports whether nothing waits.
func (q *WriteQueue) Empty() bool { return len(q.bufs) == 0 }

// Len is the number of unwritten bytes.
func (q *WriteQueue) Len() int { return q.bytes }

// Offered records that the owner has just offered the queue to its fd
// (a flush, here or in a batch): what is left, the fd refused.
func (q *WriteQueue) Offered() { q.refused = q.bytes }

// Refused is how many of the queued bytes the fd refused when last offered
// them (0: it took all it was offered, or nothing was offered yet). Bytes
// queued since then have not been offered and do not count.
func (q *WriteQueue) Refused() int { return min(q.refused, q.bytes) }

// Flush writes as much as fd takes now. It returns how many write calls
// wrote something; an error means the fd is broken (EAGAIN is not an
// error: the rest waits for writability).
func (q *WriteQueue) Flush(fd int) (writes int, err error) {
	var vec [MaxIovecs][]byte
	var flat [flatBytes]byte
	for !q.Empty() {
		v := q.vector(&vec)
		want := 0
		for _, b := range v {
			want += len(b)
		}
		n, err := writeVector(fd, v, want, &flat)
		if err == unix.EAGAIN {
			return writes, nil
		}
		if err != nil {
			return writes, err
		}
		writes++
		q.advance(n)
		if n < want {
			return writes, nil // the socket buffer is full
		}
	}
	return writes, nil
}

// flatBytes bounds the small frames Flush copies into one buffer.
const flatBytes = 4096

// writeVector writes v (want bytes) with one system call. Small frames
// (a burst of short publications) are copied into flat and written with
// write(2): in the kernel, every iovec of a writev is a separate copy
// into the socket buffer, which costs more than copying a few KiB here
// once; larger frames go out with writev, uncopied.
func writeVector(fd int, v [][]byte, want int, flat *[flatBytes]byte) (int, error) {
	switch {
	case len(v) == 1:
		return Write(fd, v[0])
	case want <= len(flat):
		k := 0
		for _, b := range v {
			k += copy(flat[k:], b)
		}
		return Write(fd, flat[:k])
	default:
		return Writev(fd, v)
	}
}

// vector fills vec with the unwritten parts of up to len(vec) buffers.
func (q *WriteQueue) vector(vec *[MaxIovecs][]byte) [][]byte {
	n := copy(vec[:], q.bufs)
	if n > 0 {
		vec[0] = vec[0][q.off:]
	}
	return vec[:n]
}

// advance drops n written bytes from the front.
func (q *WriteQueue) advance(n int) {
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

// DropUnstarted discards every buffer not yet partly written (a partly
// written frame must be finished or the stream would be corrupt).
func (q *WriteQueue) DropUnstarted() {
	keep := 0
	if q.off > 0 {
		keep = 1
	}
	clear(q.bufs[keep:])
	q.bufs = q.bufs[:keep]
	q.bytes = 0
	if keep == 1 {
		q.bytes = len(q.bufs[0]) - q.off
	}
}

// Reset empties the queue, keeping a small array for reuse (a queue kept
// in a pool) and dropping a large one.
func (q *WriteQueue) Reset() {
	clear(q.bufs)
	if cap(q.bufs) > 64 {
		q.bufs = nil
	}
	q.bufs, q.off, q.bytes, q.refused = q.bufs[:0], 0, 0, 0
}
