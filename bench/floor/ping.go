package floor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// The heartbeat floor: the cheapest way to ping every socket once per
// interval and read every pong. Sockets are pinged in slices, one slice
// per tick, as a timing wheel spreads a server's pings; pongs are read
// through one edge-triggered epoll, one read(2) per ready socket. No
// deadline is tracked and nothing is parsed beyond counting pong bytes, so
// what a server spends per ping beyond this is its own overhead.

// pingTick is how often a slice of sockets is pinged: wsgate's timer tick.
const pingTick = 100 * time.Millisecond

// pingFrame is an empty unmasked ping; the benchmark's client answers each
// with an empty masked pong.
var pingFrame = wsframe.Frame(wsframe.OpPing, nil)

// pinger is the heartbeat floor's state, made on the first ping command.
type pinger struct {
	epfd   int
	events []unix.EpollEvent
	buf    []byte
	pongs  int
}

func (s *session) newPinger() (*pinger, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("floor: epoll_create1: %w", err)
	}
	for i, fd := range s.fds {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			return nil, fmt.Errorf("floor: epoll_ctl: %w", err)
		}
	}
	return &pinger{epfd: epfd, events: make([]unix.EpollEvent, 256), buf: make([]byte, 64<<10)}, nil
}

func (p *pinger) close() { unix.Close(p.epfd) }

// ping pings every socket once per cmd.IntervalMs, a slice per tick, for
// cmd.DurationMs (a duration shorter than the interval pings only the
// slices due in it), then waits (at most pongWait) for the pongs still
// out. It returns the pings sent and the pongs read.
func (s *session) ping(cmd Command, c *counters) (pings, pongs int, err error) {
	if s.pinger == nil {
		if s.pinger, err = s.newPinger(); err != nil {
			return 0, 0, err
		}
	}
	p := s.pinger
	interval := time.Duration(cmd.IntervalMs) * time.Millisecond
	slices := max(1, int(interval/pingTick))
	ticks := max(1, int(time.Duration(cmd.DurationMs)*time.Millisecond/pingTick))
	n := len(s.fds)
	start := time.Now()
	p.pongs = 0
	for k := range ticks {
		if err := p.readUntil(s, start.Add(time.Duration(k)*pingTick)); err != nil {
			return pings, p.pongs, err
		}
		lo, hi := k%slices*n/slices, (k%slices+1)*n/slices
		for i := lo; i < hi; i++ {
			s.send(i, pingFrame, c)
		}
		pings += hi - lo
	}
	if err := p.readUntil(s, start.Add(time.Duration(ticks)*pingTick)); err != nil {
		return pings, p.pongs, err
	}
	deadline := time.Now().Add(pongWait)
	for p.pongs < pings && time.Now().Before(deadline) {
		if err := p.readUntil(s, time.Now().Add(pingTick)); err != nil {
			return pings, p.pongs, err
		}
	}
	return pings, p.pongs, nil
}

// pongWait bounds the wait for the last pongs.
const pongWait = 5 * time.Second

// readUntil reads whatever the sockets report until the deadline.
func (p *pinger) readUntil(s *session, deadline time.Time) error {
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return nil
		}
		n, err := unix.EpollWait(p.epfd, p.events, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("floor: epoll_wait: %w", err)
		}
		for _, ev := range p.events[:n] {
			if err := p.drain(s.fds[ev.Fd]); err != nil {
				return err
			}
		}
	}
}

// drain reads one socket until the kernel has no more for it (a short
// read says so without a read that returns EAGAIN).
func (p *pinger) drain(fd int) error {
	for {
		n, err := unix.Read(fd, p.buf)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return nil
		case err != nil:
			return fmt.Errorf("floor: read: %w", err)
		case n == 0:
			return errors.New("floor: a client closed its connection during pings")
		}
		p.pongs += countPongs(p.buf[:n])
		if n < len(p.buf) {
			return nil
		}
	}
}

// countPongs counts the pong frames in b. A client's pong to an empty ping
// is 6 bytes and arrives whole, so frames are taken to start at b[0]; a
// frame cut off at the end is not counted.
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
