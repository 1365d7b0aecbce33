package floor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
	"github.com/wsgate/wsgate/netpoll"
)

// The heartbeat floor: the least a server can do to ping every socket once
// per interval and read every pong. Sockets are pinged in order, as many
// per tick as the interval spreads over it (a timing wheel's pace); pongs
// are read through one edge-triggered epoll, one read(2) per ready socket.
// No deadline is tracked and nothing is parsed beyond counting pongs.
// It waits and does I/O the way wsgate's netpoll does — raw system calls,
// the epoll fd parked in Go's runtime poller, epoll_wait only with a zero
// timeout — so the Go runtime's own overhead is no greater than wsgate's.

// pingTick is how often the due pings are sent: wsgate's timer tick.
const pingTick = 100 * time.Millisecond

// pingFrame is an empty unmasked ping; the benchmark's client answers each
// with an empty masked pong.
var pingFrame = wsframe.Frame(wsframe.OpPing, nil)

// pinger is the heartbeat floor's state, made on the first ping command.
type pinger struct {
	epfd   int      // owned by file; kept because file.Fd() would make it blocking
	file   *os.File // the epoll fd, parked in the runtime poller
	raw    syscall.RawConn
	events []unix.EpollEvent
	buf    []byte
	closed []bool // by socket: the client has gone, it is no longer pinged
	open   int    // sockets not closed
	pongs  int
}

func (s *session) newPinger() (*pinger, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("floor: epoll_create1: %w", err)
	}
	// os.NewFile parks only non-blocking fds in the runtime poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("floor: epoll fd non-blocking: %w", err)
	}
	for i, fd := range s.fds {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			return nil, fmt.Errorf("floor: epoll_ctl: %w", err)
		}
	}
	f := os.NewFile(uintptr(epfd), "floor-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("floor: epoll fd: %w", err)
	}
	return &pinger{epfd: epfd, file: f, raw: raw, events: make([]unix.EpollEvent, 256), buf: make([]byte, 64<<10),
		closed: make([]bool, len(s.fds)), open: len(s.fds)}, nil
}

func (p *pinger) close() { p.file.Close() }

// ping pings the sockets in turn at len(fds) per cmd.IntervalMs for
// cmd.DurationMs, then waits (at most pongWait) for the pongs still out.
// It returns the pings sent and the pongs read.
func (s *session) ping(cmd Command, c *counters) (pings, pongs int, err error) {
	if s.pinger == nil {
		if s.pinger, err = s.newPinger(); err != nil {
			return 0, 0, err
		}
	}
	p := s.pinger
	interval := time.Duration(cmd.IntervalMs) * time.Millisecond
	ticks := max(1, int(time.Duration(cmd.DurationMs)*time.Millisecond/pingTick))
	n := len(s.fds)
	start := time.Now()
	p.pongs = 0
	next := 0 // pings due so far, pinged or skipped
	for k := range ticks {
		if err := p.readUntil(s, start.Add(time.Duration(k)*pingTick)); err != nil {
			return pings, p.pongs, err
		}
		// Due by the end of this tick; sent at its start, like a wheel's.
		due := int(int64(n) * int64(k+1) * int64(pingTick) / int64(interval))
		for ; next < due; next++ {
			if i := next % n; !p.closed[i] {
				p.send(s.fds[i], c)
				pings++
			}
		}
	}
	deadline := start.Add(time.Duration(ticks) * pingTick)
	for p.pongs < pings && p.open > 0 && time.Now().Before(deadline.Add(pongWait)) {
		if err := p.readUntil(s, time.Now().Add(pingTick)); err != nil {
			return pings, p.pongs, err
		}
	}
	return pings, p.pongs, nil
}

// pongWait bounds the wait for the last pongs.
const pongWait = 5 * time.Second

// send writes one ping. A 2-byte frame to an idle client's empty buffer
// goes whole or not at all; a socket that takes none is counted.
func (p *pinger) send(fd int, c *counters) {
	if n, err := netpoll.Write(fd, pingFrame); n > 0 {
		c.writes++
	} else if err == unix.EAGAIN {
		c.eagain++
	}
}

// readUntil reads whatever the sockets report until the deadline, parked
// in the runtime poller in between.
func (p *pinger) readUntil(s *session, deadline time.Time) error {
	if err := p.file.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("floor: epoll deadline: %w", err)
	}
	for {
		var n int
		var werr error
		err := p.raw.Read(func(epfd uintptr) bool {
			n, werr = netpoll.EpollWait(int(epfd), p.events)
			return n > 0 || werr != nil
		})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err = errors.Join(err, werr); err != nil {
			return fmt.Errorf("floor: epoll_wait: %w", err)
		}
		for _, ev := range p.events[:n] {
			p.drain(s, int(ev.Fd))
		}
	}
}

// drain reads socket i until the kernel has no more for it (a short read
// says so without a read that returns EAGAIN). A client that has gone is
// no longer pinged; the harness sees its missing pongs.
func (p *pinger) drain(s *session, i int) {
	for {
		n, err := netpoll.Read(s.fds[i], p.buf)
		switch {
		case err == unix.EAGAIN:
			return
		case err != nil || n == 0:
			p.closed[i] = true
			p.open--
			_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, s.fds[i], nil)
			return
		}
		p.pongs += countPongs(p.buf[:n])
		if n < len(p.buf) {
			return
		}
	}
}

// countPongs counts the pong frames in b. A client's pong to an empty ping
// is 6 bytes and arrives whole, so frames are taken to start at b[0]; a
// frame cut off at the end is not counted (were one ever split, that
// socket's later pongs would be undercounted, never overcounted).
func countPongs(b []byte) int {
	n := 0
	for len(b) >= 2 {
		size, ext := int(b[1]&0x7f), 0
		switch size {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		if len(b) < 2+ext {
			break
		}
		if ext == 2 {
			size = int(binary.BigEndian.Uint16(b[2:]))
		} else if ext == 8 {
			size = int(min(binary.BigEndian.Uint64(b[2:]), 1<<30))
		}
		if b[1]&0x80 != 0 {
			size += 4 // the mask key
		}
		size += 2 + ext
		if len(b) < size {
			break
		}
		if wsframe.Opcode(b[0]&0x0f) == wsframe.OpPong {
			n++
		}
		b = b[size:]
	}
	return n
}
