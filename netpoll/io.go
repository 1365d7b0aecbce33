package netpoll

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
	for {
		r, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
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

// Write writes p to a non-blocking fd, retrying EINTR.
func Write(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// Read reads from a non-blocking fd, retrying EINTR.
func Read(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// Discard drops up to n bytes of a non-blocking TCP socket's input without
// copying them: recv(2) with MSG_TRUNC, which TCP treats as "discard"
// (tcp(7)). It returns how many bytes were dropped; 0 with a nil error is
// EOF, and EAGAIN means nothing is waiting.
func Discard(fd, n int) (int, error) {
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, uintptr(n),
			unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
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
