package gateway

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listen opens the TCP listener: keepalive off (accept4 on the raw fd never
// enables it anyway; WebSocket pings do that job — at a million sockets
// TCP keepalive would be ~67k probes/s), SO_REUSEPORT when asked.
func listen(ctx context.Context, addr string, reusePort bool) (*net.TCPListener, syscall.RawConn, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	tl := l.(*net.TCPListener)
	raw, err := tl.SyscallConn()
	if err != nil {
		tl.Close()
		return nil, nil, fmt.Errorf("listener raw conn: %w", err)
	}
	return tl, raw, nil
}

// accept4 accepts one connection as a non-blocking, close-on-exec fd and
// asks for no peer address, so accepting allocates nothing.
func accept4(lfd int) (int, error) {
	for {
		fd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0,
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case 0:
			return int(fd), nil
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			return -1, errno
		}
	}
}
