package netpoll

import (
	"errors"
	"math"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Sender flushes many WriteQueues, each to its own non-blocking socket,
// with one system call: the first write of every queue goes out in one
// io_uring batch. A queue that still holds bytes after a complete first
// write (it had more than MaxIovecs buffers) is finished with its own
// writes, as WriteQueue.Flush would.
//
// The caller must keep each fd open and its queue untouched (its lock
// held) from Add until the results are read. A Sender is not safe for
// concurrent use; it holds one io_uring fd and is reused for every batch.
type Sender struct {
	ring   *uring
	items  []sendItem // the batch: items[:n]
	n      int
	vec    [MaxIovecs][]byte
	done   func(userData uint64, res int32)
	broken bool
	// inFlight keeps what sends a broken ring may still be reading (their
	// frames, and the items holding their iovecs and flat copies), so
	// that the memory is never reused under the kernel.
	inFlight     [][]byte
	inFlightItem []sendItem
}

// sendItem is one queue's part of a batch. Everything the kernel reads
// (flat, iov, msg) lives here, on the heap, where nothing moves it.
type sendItem struct {
	fd   int
	q    *WriteQueue
	want int
	res  int32
	flat *[flatBytes]byte // allocated on first use
	iov  [MaxIovecs]unix.Iovec
	msg  unix.Msghdr

	writes int
	err    error
}

// resPending marks an item the kernel has not answered.
const resPending = math.MinInt32

// NewSender returns a Sender for batches of up to size queues, or an error
// when this kernel cannot batch sends (io_uring missing, disabled, or
// without the send operations): then write one queue at a time.
func NewSender(size int) (*Sender, error) {
	r, err := newURing(size)
	if err != nil {
		return nil, err
	}
	s := &Sender{ring: r, items: make([]sendItem, r.size())}
	s.done = s.complete
	return s, nil
}

// Cap is how many queues one batch holds.
func (s *Sender) Cap() int { return len(s.items) }

// Len is how many queues the batch holds now.
func (s *Sender) Len() int { return s.n }

// Add puts q's next write to fd in the batch and returns its index for
// Result. The batch must not be full and q must not be empty.
func (s *Sender) Add(fd int, q *WriteQueue) int {
	it := &s.items[s.n]
	it.fd, it.q = fd, q
	s.n++
	return s.n - 1
}

// Send writes the batch: one io_uring_enter for every queue's first write,
// then whatever each queue still needs with its own writes. Results are
// read with Result until Reset.
func (s *Sender) Send() {
	if s.n == 0 {
		return
	}
	if s.broken {
		s.flushEach()
		return
	}
	for i := range s.n {
		s.prepare(i)
	}
	err := s.ring.submitAndWait(s.n, s.done)
	if errors.Is(err, errURingBroken) {
		s.broken = true
	}
	for i := range s.n {
		s.finish(&s.items[i])
	}
}

// prepare writes item i's SQE: send(2) of one buffer (small frames copied
// into one, as writeVector does), sendmsg(2) of several large ones.
func (s *Sender) prepare(i int) {
	it := &s.items[i]
	v := it.q.vector(&s.vec)
	it.want = 0
	for _, b := range v {
		it.want += len(b)
	}
	it.res = resPending
	e := s.ring.sqe(i)
	e.fd = int32(it.fd)
	e.userData = uint64(i)
	e.msgFlags = unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
	switch {
	case len(v) == 1 && len(v[0]) > 0:
		e.opcode, e.addr, e.len = uringOpSend, uint64(uintptr(unsafe.Pointer(&v[0][0]))), uint32(len(v[0]))
	case it.want <= flatBytes:
		if it.flat == nil {
			it.flat = new([flatBytes]byte)
		}
		k := 0
		for _, b := range v {
			k += copy(it.flat[k:], b)
		}
		e.opcode, e.addr, e.len = uringOpSend, uint64(uintptr(unsafe.Pointer(&it.flat[0]))), uint32(k)
	default:
		n := 0
		for _, b := range v {
			if len(b) > 0 {
				it.iov[n].Base = &b[0]
				it.iov[n].SetLen(len(b))
				n++
			}
		}
		it.msg = unix.Msghdr{Iov: &it.iov[0]}
		it.msg.SetIovlen(n)
		e.opcode, e.addr = uringOpSendmsg, uint64(uintptr(unsafe.Pointer(&it.msg)))
	}
	clear(s.vec[:len(v)])
}

func (s *Sender) complete(userData uint64, res int32) { s.items[userData].res = res }

// finish applies the kernel's answer to the item's queue.
func (s *Sender) finish(it *sendItem) {
	switch res := it.res; {
	case res == resPending: // lost with a broken ring: the stream is unknown
		s.inFlight = append(s.inFlight, it.q.bufs...)
		it.writes, it.err = 0, errURingBroken
		return // its flat, iov and msg stay the kernel's too
	case res == -int32(syscall.ECANCELED), res == -int32(syscall.EINTR): // not sent
		it.writes, it.err = it.q.Flush(it.fd)
	case res == -int32(syscall.EAGAIN):
		it.writes, it.err = 0, nil
	case res < 0:
		it.writes, it.err = 0, syscall.Errno(-res)
	default:
		it.q.advance(int(res))
		it.writes, it.err = 1, nil
		if int(res) == it.want && !it.q.Empty() {
			more, err := it.q.Flush(it.fd)
			it.writes, it.err = 1+more, err
		}
	}
	if it.msg.Iov != nil { // let go of the frames
		clear(it.iov[:it.msg.Iovlen])
		it.msg = unix.Msghdr{}
	}
}

// flushEach is Send without the ring.
func (s *Sender) flushEach() {
	for i := range s.n {
		it := &s.items[i]
		it.writes, it.err = it.q.Flush(it.fd)
	}
}

// Result is what Send did for the queue at index i, as WriteQueue.Flush
// reports it: how many writes wrote something, and an error when the
// socket is broken (a full socket is not an error).
func (s *Sender) Result(i int) (writes int, err error) {
	return s.items[i].writes, s.items[i].err
}

// Reset empties the batch, keeping its buffers (a broken ring's last
// items are kept aside instead, see inFlight).
func (s *Sender) Reset() {
	if s.broken && s.inFlightItem == nil {
		s.inFlightItem = s.items
		s.items = make([]sendItem, len(s.items))
		s.n = 0
		return
	}
	for i := range s.n {
		it := &s.items[i]
		it.q, it.err = nil, nil
	}
	s.n = 0
}

// Close releases the ring.
func (s *Sender) Close() error { return s.ring.close() }
