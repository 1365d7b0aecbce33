package netpoll

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls here are all on non-blocking fds and return within
// microseconds, so they are made raw: without the runtime's
// entersyscall/exitsyscall, whose wake-up of a sleeping sysmon costs a
// thread wake-up per call when the gateway is lightly loaded (and which
// buys nothing for a call that cannot block). A raw call keeps its P
// for those microseconds, as any Go code would.

// retryEINTR makes a raw system call again while a signal interrupts it,
// and returns its result, or 0 and its errno. call converts its pointers to
// uintptr in the system call's own argument list: unsafe.Pointer's rule for
// system calls keeps them valid only there, not through a helper's uintptr
// parameters.
func retryEINTR(call func() (uintptr, syscall.Errno)) (int, error) {
	for {
		r, errno := call()
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}

// MaxIovecs bounds how many buffers one Writev call passes to the kernel.
const MaxIovecs = 64

// Writev writes bufs to a non-blocking fd with one writev(2) and returns the
// number of bytes written. At most MaxIovecs buffers are passed; the iovec
// array lives on the stack so the call does not allocate. EAGAIN is returned
// as unix.EAGAIN with n == 0.
func Writev(fd int, bufs [][]byte) (int, error) {
	var iov [MaxIovecs]unix.Iovec
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if n == MaxIovecs {
			break
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return retryEINTR(func() (uintptr, syscall.Errno) {
		r, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		return r, errno
	})
}

// Write writes p to a non-blocking fd, retrying EINTR.
func Write(fd int, p []byte) (int, error) {
	return rawIO(unix.SYS_WRITE, fd, p)
}

// Read reads from a non-blocking fd, retrying EINTR.
func Read(fd int, p []byte) (int, error) {
	return rawIO(unix.SYS_READ, fd, p)
}

// rawIO is read(2) or write(2) of p on fd. An empty p is still passed to
// the kernel (a zero-length read reports EOF or EAGAIN like any other).
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var base unsafe.Pointer
	if len(p) > 0 {
		base = unsafe.Pointer(&p[0])
	}
	n, err := retryEINTR(func() (uintptr, syscall.Errno) {
		r, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(base), uintptr(len(p)))
		return r, errno
	})
	if err != nil {
		return -1, err // as read(2) and write(2) do
	}
	return n, nil
}

// EpollWait is epoll_wait(2) with a zero timeout: it never blocks. The
// poller waits for an epoll fd to become readable in Go's runtime poller
// and then harvests it with this, never blocking a thread in the kernel.
func EpollWait(epfd int, events []unix.EpollEvent) (int, error) {
	return retryEINTR(func() (uintptr, syscall.Errno) {
		r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		return r, errno
	})
}

// Unread reports how many bytes wait in a socket's receive queue, not yet
// read (SIOCINQ, tcp(7)).
func Unread(fd int) (int, error) {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0, fmt.Errorf("netpoll: SIOCINQ fd %d: %w", fd, err)
	}
	return n, nil
}

// Discard drops up to n bytes of a non-blocking TCP socket's input without
// copying them: recv(2) with MSG_TRUNC, which TCP treats as "discard"
// (tcp(7)). It returns how many bytes were dropped; 0 with a nil error is
// EOF, and EAGAIN means nothing is waiting.
func Discard(fd, n int) (int, error) {
	return retryEINTR(func() (uintptr, syscall.Errno) {
		r, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), 0, uintptr(n),
			unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
		return r, errno
	})
}
