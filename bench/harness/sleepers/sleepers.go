// Package sleepers opens WebSocket subscribers that never read: the slow
// consumers of the slow-consumer scenario. Each is a plain blocking socket
// with a small receive buffer (set before connect, so the advertised
// window stays small), upgraded and subscribed, then left alone. Without
// an event loop nothing ever drains them, so the server's bytes pile up in
// the kernel and then in the server's own queue for that connection.
package sleepers

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// Config describes the sleepers to open.
type Config struct {
	Addr  string // server IPv4 host:port
	Path  string // upgrade path
	Conns int
	// Hello is the payload of one message sent right after the upgrade (a
	// subscribe command), binary unless HelloText.
	Hello     []byte
	HelloText bool
	// RcvBuf is SO_RCVBUF in bytes (the kernel doubles it); default 4096.
	RcvBuf int
	// Timeout bounds each connect+upgrade; default 5 s.
	Timeout time.Duration
}

// Sleepers holds the open sockets.
type Sleepers struct {
	fds []int
}

// Dial opens cfg.Conns sleepers one after another (each takes well under
// a millisecond on loopback). On error the ones already open are closed.
func Dial(ctx context.Context, cfg Config) (*Sleepers, error) {
	if cfg.RcvBuf <= 0 {
		cfg.RcvBuf = 4096
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil || !ap.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("sleepers: address %q: want IPv4 host:port", cfg.Addr)
	}
	dst := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	s := &Sleepers{}
	for i := range cfg.Conns {
		if err := ctx.Err(); err != nil {
			s.Close()
			return nil, err
		}
		// Spread over 127.0.0.1–8 like the load client, for the same reason:
		// ephemeral ports per source address.
		src := [4]byte{127, 0, 0, byte(1 + i%8)}
		fd, err := dialOne(src, dst, cfg)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sleepers: connection %d: %w", i, err)
		}
		s.fds = append(s.fds, fd)
	}
	return s, nil
}

func dialOne(src [4]byte, dst *unix.SockaddrInet4, cfg Config) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := setup(fd, src, dst, cfg); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func setup(fd int, src [4]byte, dst *unix.SockaddrInet4, cfg Config) error {
	tv := unix.NsecToTimeval(cfg.Timeout.Nanoseconds())
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.RcvBuf},
		{unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return fmt.Errorf("setsockopt: %w", err)
		}
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := connect(fd, dst); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	host := fmt.Sprintf("%d.%d.%d.%d:%d", dst.Addr[0], dst.Addr[1], dst.Addr[2], dst.Addr[3], dst.Port)
	// Early frames after the head are dropped with it: a sleeper reads
	// nothing.
	status, _, err := loadclient.Upgrade(fdConn(fd), host, cfg.Path, "")
	switch {
	case err != nil:
		return err
	case status != "101":
		return fmt.Errorf("upgrade refused: status %s", status)
	}
	if cfg.Hello != nil {
		op := wsframe.OpBinary
		if cfg.HelloText {
			op = wsframe.OpText
		}
		if err := loadclient.WriteAll(fd, loadclient.ClientFrame(op, cfg.Hello)); err != nil {
			return fmt.Errorf("send hello: %w", err)
		}
	}
	return nil
}

// fdConn is a sleeper's blocking socket as loadclient.Upgrade reads and
// writes it.
type fdConn int

func (c fdConn) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(c), p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c fdConn) Write(p []byte) (int, error) {
	if err := loadclient.WriteAll(int(c), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Count returns how many sleepers are open.
func (s *Sleepers) Count() int { return len(s.fds) }

// Close closes every socket.
func (s *Sleepers) Close() {
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

// connect is a blocking connect(2) that survives signals: Go's scheduler
// preempts goroutines with SIGURG, which interrupts the call (EINTR) while
// the kernel goes on connecting. Calling connect again then reports
// EALREADY until the handshake is done, EISCONN once it is.
func connect(fd int, dst unix.Sockaddr) error {
	err := unix.Connect(fd, dst)
	for err == unix.EINTR || err == unix.EALREADY {
		if err == unix.EALREADY {
			time.Sleep(time.Millisecond)
		}
		err = unix.Connect(fd, dst)
	}
	if err == unix.EISCONN {
		return nil
	}
	return err
}
