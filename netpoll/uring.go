package netpoll

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// uring is the least of io_uring(7) that batching sends needs: a
// submission and a completion ring, no SQPOLL thread, no registered
// buffers. Requests are sends with MSG_DONTWAIT, which the kernel
// completes inline, during io_uring_enter: one system call does the work
// of many write(2)s, and on a guest whose system calls are expensive that
// saves some 40 % of a small send's CPU (bench/README.md, "Batched sends").
//
// A uring is not safe for concurrent use.
type uring struct {
	fd      int
	ringMem []byte // the SQ and CQ rings (IORING_FEAT_SINGLE_MMAP)
	sqeMem  []byte

	sqHead, sqTail *uint32
	sqMask         uint32
	sqes           []uringSQE

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []uringCQE

	// A wait is bounded (IORING_ENTER_EXT_ARG): a send that did not
	// complete inline, which MSG_DONTWAIT rules out, would otherwise hold
	// its caller, and the connections it has locked, for good.
	waitArg     uringGetEventsArg
	waitTimeout unix.Timespec
}

type uringGetEventsArg struct {
	sigmask            uint64
	sigmaskSize, minUS uint32
	ts                 uint64
}

// uringWaitTimeout bounds a batch's wait; inline sends take microseconds.
const uringWaitTimeout = time.Second

// The kernel ABI (include/uapi/linux/io_uring.h).
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringSQE struct {
	opcode, flags  uint8
	ioprio         uint16
	fd             int32
	off, addr      uint64
	len, msgFlags  uint32
	userData       uint64
	bufIndex, pers uint16
	spliceFDIn     int32
	addr3, pad     uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

const (
	uringOpSendmsg = 9
	uringOpSend    = 26

	uringSetupCQSize    = 1 << 3
	uringSetupClamp     = 1 << 4
	uringFeatSingleMap  = 1 << 0
	uringFeatExtArg     = 1 << 8
	uringEnterGetEvents = 1 << 0
	uringEnterExtArg    = 1 << 3

	uringOffSQRing = 0
	uringOffSQEs   = 0x10000000

	uringRegisterProbe = 8
	uringOpSupported   = 1 << 0
)

// errNoURing means this kernel cannot batch sends (too old, io_uring
// disabled by sysctl or seccomp): the caller writes one socket at a time.
var errNoURing = errors.New("netpoll: io_uring unavailable")

// errURingBroken means requests may still be in flight after a failed
// wait: the ring and the buffers it was given are never used again.
var errURingBroken = errors.New("netpoll: io_uring ring broken")

// newURing sets up a ring for entries requests at a time.
func newURing(entries int) (*uring, error) {
	p := uringParams{flags: uringSetupCQSize | uringSetupClamp, cqEntries: uint32(2 * entries)}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("%w: io_uring_setup: %v", errNoURing, errno)
	}
	r := &uring{fd: int(fd), waitTimeout: unix.NsecToTimespec(int64(uringWaitTimeout))}
	r.waitArg.ts = uint64(uintptr(unsafe.Pointer(&r.waitTimeout)))
	if p.features&uringFeatExtArg == 0 {
		r.close()
		return nil, fmt.Errorf("%w: no IORING_FEAT_EXT_ARG (Linux 5.11)", errNoURing)
	}
	if err := r.mapRings(&p); err != nil {
		r.close()
		return nil, err
	}
	if err := r.probeOps(uringOpSend, uringOpSendmsg); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *uring) mapRings(p *uringParams) error {
	if p.features&uringFeatSingleMap == 0 {
		return fmt.Errorf("%w: no IORING_FEAT_SINGLE_MMAP", errNoURing)
	}
	size := max(p.sqOff.array+4*p.sqEntries, p.cqOff.cqes+uint32(unsafe.Sizeof(uringCQE{}))*p.cqEntries)
	var err error
	r.ringMem, err = unix.Mmap(r.fd, uringOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("%w: mmap rings: %v", errNoURing, err)
	}
	r.sqeMem, err = unix.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("%w: mmap SQEs: %v", errNoURing, err)
	}
	base := unsafe.Pointer(&r.ringMem[0])
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Add(base, off)) }
	r.sqHead, r.sqTail, r.sqMask = at(p.sqOff.head), at(p.sqOff.tail), *at(p.sqOff.ringMask)
	r.cqHead, r.cqTail, r.cqMask = at(p.cqOff.head), at(p.cqOff.tail), *at(p.cqOff.ringMask)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	// The SQ's index array maps ring slot i to SQE i, once and for all.
	array := unsafe.Slice(at(p.sqOff.array), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	return nil
}

// probeOps checks that the kernel knows every op (IORING_REGISTER_PROBE).
func (r *uring) probeOps(ops ...uint8) error {
	const n = 256
	var probe struct {
		lastOp, opsLen uint8
		resv           uint16
		resv2          [3]uint32
		ops            [n]struct {
			op, resv uint8
			flags    uint16
			resv2    uint32
		}
	}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uringRegisterProbe, uintptr(unsafe.Pointer(&probe)), n, 0, 0)
	if errno != 0 {
		return fmt.Errorf("%w: probe: %v", errNoURing, errno)
	}
	for _, op := range ops {
		if op > probe.lastOp || probe.ops[op].flags&uringOpSupported == 0 {
			return fmt.Errorf("%w: op %d not supported", errNoURing, op)
		}
	}
	return nil
}

// size is how many requests fit in the submission ring.
func (r *uring) size() int { return len(r.sqes) }

// sqe returns the i-th SQE of the next submission, zeroed. Between two
// submitAndWait calls the kernel has taken every SQE, so the ring's tail
// and head agree and either marks where the next submission starts.
func (r *uring) sqe(i int) *uringSQE {
	e := &r.sqes[(atomic.LoadUint32(r.sqTail)+uint32(i))&r.sqMask]
	*e = uringSQE{}
	return e
}

// submitAndWait submits the next n SQEs and waits until all n have
// completed, calling done with each completion. Sends with MSG_DONTWAIT
// complete inline, during the submission, so the wait returns at once.
// SQEs the kernel refused to take are withdrawn and reported to done with
// res -ECANCELED: they sent nothing. errURingBroken (a wait that failed or
// timed out) means some SQEs may still be in flight: the ring must not be
// used again, nor their buffers changed.
func (r *uring) submitAndWait(n int, done func(userData uint64, res int32)) (submitErr error) {
	head := atomic.LoadUint32(r.sqHead)
	tail := head + uint32(n)
	atomic.StoreUint32(r.sqTail, tail)
	completed := 0
	for {
		pending := int(tail - atomic.LoadUint32(r.sqHead))
		taken := int(tail-head) - pending
		if submitErr != nil && pending > 0 {
			r.withdraw(tail, done) // the kernel reads SQEs only inside io_uring_enter
			tail = atomic.LoadUint32(r.sqHead)
			continue
		}
		if pending == 0 && completed == taken {
			return submitErr
		}
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(pending),
			uintptr(taken+pending-completed), uringEnterGetEvents|uringEnterExtArg,
			uintptr(unsafe.Pointer(&r.waitArg)), unsafe.Sizeof(r.waitArg))
		completed += r.reap(done)
		if errno != 0 && errno != syscall.EINTR {
			if pending == 0 {
				return fmt.Errorf("%w: io_uring_enter wait: %v", errURingBroken, errno)
			}
			submitErr = fmt.Errorf("netpoll: io_uring_enter submit: %w", errno)
		}
	}
}

// withdraw takes back the SQEs from the kernel's head up to tail.
func (r *uring) withdraw(tail uint32, done func(userData uint64, res int32)) {
	head := atomic.LoadUint32(r.sqHead)
	for h := head; h != tail; h++ {
		done(r.sqes[h&r.sqMask].userData, -int32(syscall.ECANCELED))
	}
	atomic.StoreUint32(r.sqTail, head)
}

// reap passes every posted completion to done and returns how many.
func (r *uring) reap(done func(userData uint64, res int32)) int {
	head, tail := atomic.LoadUint32(r.cqHead), atomic.LoadUint32(r.cqTail)
	for h := head; h != tail; h++ {
		c := &r.cqes[h&r.cqMask]
		done(c.userData, c.res)
	}
	atomic.StoreUint32(r.cqHead, tail)
	return int(tail - head)
}

func (r *uring) close() error {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
	}
	if r.ringMem != nil {
		_ = unix.Munmap(r.ringMem)
	}
	return unix.Close(r.fd)
}
