// Package floor is the fan-out floor: the cheapest possible server that
// still delivers the same frames to the same sockets. It accepts N
// WebSocket connections on raw blocking fds, switches them to non-blocking
// and then, per message, writes one pre-built frame to every socket with
// a bare write(2) — no event loop, no queue, no goroutine per socket.
// What a real server spends per delivery beyond this process's CPU per
// delivery is its own overhead; on loopback most of the floor is the
// kernel's TCP work (the receiver's included, charged to the writer).
// The same sockets serve the heartbeat floor (ping.go): every socket
// pinged once per interval and every pong read, through one epoll.
//
// It is driven over stdin/stdout with one JSON object per line (see
// Command and Event) so the harness can interleave it with the servers
// under test and measure its CPU the same way, from /proc.
package floor

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// Command is one line the harness writes to the floor's stdin.
type Command struct {
	// Cmd is "rate" (Messages messages at Rate per second) or "burst"
	// (Bursts rounds of Burst back-to-back messages, PauseMs apart).
	Cmd      string  `json:"cmd"`
	Rate     float64 `json:"rate,omitempty"`
	Messages int     `json:"messages,omitempty"`
	Pongs    int     `json:"pongs,omitempty"` // for "ping": pongs read (Messages: pings sent)
	Burst    int     `json:"burst,omitempty"`
	Bursts   int     `json:"bursts,omitempty"`
	PauseMs  int     `json:"pause_ms,omitempty"`
	// Coalesce, in a burst, writes each socket's Burst frames with one
	// write(2) instead of one write per frame: the floor for a server
	// that coalesces queued frames.
	Coalesce bool `json:"coalesce,omitempty"`
	// For "ping" (the heartbeat floor, see ping.go): for DurationMs,
	// ping every socket once per IntervalMs and read every pong.
	DurationMs int `json:"duration_ms,omitempty"`
	IntervalMs int `json:"interval_ms,omitempty"`
}

// Event is one line the floor prints.
type Event struct {
	// Event is "listening" (first line), "ready" (all connections
	// upgraded), "done" (a command finished) or "error".
	Event  string `json:"event"`
	Listen string `json:"listen,omitempty"`
	Conns  int    `json:"conns,omitempty"`
	// For "done": messages sent, write(2) calls that wrote something,
	// writes that found the socket full (EAGAIN), and this process's CPU
	// time (getrusage) during the command.
	Messages int     `json:"messages,omitempty"`
	Pongs    int     `json:"pongs,omitempty"` // for "ping": pongs read (Messages: pings sent)
	Writes   int64   `json:"writes,omitempty"`
	EAGAIN   int64   `json:"eagain,omitempty"`
	CPUUs    float64 `json:"cpu_us,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// Config is what the floor serves.
type Config struct {
	Listen  string // IPv4 host:port
	Conns   int    // connections to accept before reporting ready
	Channel string // channel name written in the pushes (sizes the frame)
	// DataBytes is the publication payload size (default: what makes a
	// 80-byte push on Channel, see wire.DataBytes).
	DataBytes int
	// HandshakeTimeout bounds reading one upgrade request (default 5 s).
	HandshakeTimeout time.Duration
	// AcceptIdle ends accepting early when no connection arrives for this
	// long (default 10 s): "ready" then reports fewer than Conns, rather
	// than the floor waiting forever for dials that failed.
	AcceptIdle time.Duration
}

// Run serves one floor session: listen, accept cfg.Conns upgrades, then
// execute commands from in until EOF. Events go to out.
func Run(cfg Config, in io.Reader, out io.Writer) error {
	if cfg.Channel == "" {
		cfg.Channel = "fanout"
	}
	if cfg.DataBytes <= 0 {
		cfg.DataBytes = wire.DataBytes(cfg.Channel)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.AcceptIdle <= 0 {
		cfg.AcceptIdle = 10 * time.Second
	}
	enc := json.NewEncoder(out)
	lfd, addr, err := listen(cfg.Listen)
	if err != nil {
		return err
	}
	defer unix.Close(lfd)
	if err := enc.Encode(Event{Event: "listening", Listen: addr}); err != nil {
		return err
	}
	s := &session{cfg: cfg, data: wire.NewData(cfg.DataBytes)}
	defer s.closeAll()
	if err := s.accept(lfd); err != nil {
		_ = enc.Encode(Event{Event: "error", Error: err.Error()})
		return err
	}
	if err := enc.Encode(Event{Event: "ready", Conns: len(s.fds)}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var c Command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			_ = enc.Encode(Event{Event: "error", Error: fmt.Sprintf("command %q: %v", sc.Text(), err)})
			continue
		}
		ev, err := s.execute(c)
		if err != nil {
			ev = Event{Event: "error", Error: err.Error()}
		}
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return sc.Err()
}

// listen opens a blocking IPv4 listener.
func listen(addr string) (int, string, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Unmap().Is4() {
		return -1, "", fmt.Errorf("floor: listen address %q: want IPv4 host:port", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("floor: socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("floor: bind %s: %w", addr, err)
	}
	// The kernel caps the backlog at somaxconn.
	if err := unix.Listen(fd, 65535); err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("floor: listen: %w", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("floor: getsockname: %w", err)
	}
	in4 := got.(*unix.SockaddrInet4)
	return fd, netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)).String(), nil
}

type session struct {
	cfg    Config
	fds    []int
	pend   [][]byte // per socket: bytes the kernel did not take yet
	data   []byte
	seq    uint64
	pinger *pinger // made by the first ping command
}

func (s *session) closeAll() {
	if s.pinger != nil {
		s.pinger.close()
	}
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

// accept takes connections one at a time, each upgraded with blocking
// I/O under a receive timeout, until cfg.Conns are open or none arrived
// for cfg.AcceptIdle (accept(2) honours the listener's SO_RCVTIMEO).
func (s *session) accept(lfd int) error {
	idle := unix.NsecToTimeval(s.cfg.AcceptIdle.Nanoseconds())
	if err := unix.SetsockoptTimeval(lfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &idle); err != nil {
		return fmt.Errorf("floor: listener timeout: %w", err)
	}
	tv := unix.NsecToTimeval(s.cfg.HandshakeTimeout.Nanoseconds())
	defer func() { s.pend = make([][]byte, len(s.fds)) }()
	for len(s.fds) < s.cfg.Conns {
		fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err == unix.EAGAIN {
			return nil // nobody else is coming
		}
		if err != nil {
			return fmt.Errorf("floor: accept after %d connections: %w", len(s.fds), err)
		}
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if err := upgrade(fd); err != nil {
			// A client that fails its handshake is not one of ours (or
			// gave up); the harness sees the count in "ready".
			unix.Close(fd)
			continue
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return fmt.Errorf("floor: set non-blocking: %w", err)
		}
		s.fds = append(s.fds, fd)
	}
	return nil
}

// maxRequest bounds an upgrade request head.
const maxRequest = 8 << 10

// upgrade reads one HTTP upgrade request and answers 101.
func upgrade(fd int) error {
	buf := make([]byte, 0, 1024)
	var chunk [1024]byte
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		if len(buf) > maxRequest {
			return errors.New("request too large")
		}
		n, err := unix.Read(fd, chunk[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		buf = append(buf, chunk[:n]...)
	}
	key, proto := "", ""
	for _, line := range strings.Split(string(buf), "\r\n")[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sec-websocket-key":
			key = strings.TrimSpace(value)
		case "sec-websocket-protocol":
			for p := range strings.SplitSeq(value, ",") {
				if p = strings.TrimSpace(p); p == codec.SubprotocolMsgpack {
					proto = p
				}
			}
		}
	}
	if key == "" {
		return errors.New("no Sec-WebSocket-Key")
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n"
	if proto != "" {
		resp += "Sec-WebSocket-Protocol: " + proto + "\r\n"
	}
	return loadclient.WriteAll(fd, []byte(resp+"\r\n"))
}

// frame builds the next message's WebSocket frame: the push a server
// would send for the publication, stamped now.
func (s *session) frame(dst []byte) []byte {
	wire.Stamp(s.data, s.seq, time.Now())
	s.seq++
	push := codec.AppendMessage(nil, codec.Msgpack, s.cfg.Channel, s.seq, wire.TypicalEpoch, s.data)
	dst = wsframe.AppendHeader(dst, true, wsframe.OpBinary, len(push))
	return append(dst, push...)
}

// counters of one command.
type counters struct {
	writes, eagain int64
}

// send writes b to socket i, after whatever it still owes that socket.
func (s *session) send(i int, b []byte, c *counters) {
	if len(s.pend[i]) > 0 {
		s.pend[i] = append(s.pend[i], b...)
		s.flush(i, c)
		return
	}
	n, err := unix.Write(s.fds[i], b)
	if n > 0 {
		c.writes++
	}
	if err == unix.EAGAIN {
		c.eagain++
	}
	if n < 0 {
		n = 0
	}
	if n < len(b) && (err == nil || err == unix.EAGAIN || err == unix.EINTR) {
		s.pend[i] = append(s.pend[i], b[n:]...)
	}
}

// flush tries once to write socket i's backlog.
func (s *session) flush(i int, c *counters) {
	n, err := unix.Write(s.fds[i], s.pend[i])
	if n > 0 {
		c.writes++
		s.pend[i] = s.pend[i][n:]
		if len(s.pend[i]) == 0 {
			s.pend[i] = nil
		}
	}
	if err == unix.EAGAIN {
		c.eagain++
	} else if err != nil && err != unix.EINTR {
		s.pend[i] = nil // the peer is gone: nothing more to deliver
	}
}

// drain writes every backlog out, waiting for writability with poll(2).
func (s *session) drain(c *counters) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pfds []unix.PollFd
		var idx []int
		for i := range s.fds {
			if len(s.pend[i]) > 0 {
				pfds = append(pfds, unix.PollFd{Fd: int32(s.fds[i]), Events: unix.POLLOUT})
				idx = append(idx, i)
			}
		}
		if len(pfds) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("floor: %d sockets still backlogged after 30 s", len(pfds))
		}
		if _, err := unix.Poll(pfds, 100); err != nil && err != unix.EINTR {
			return fmt.Errorf("floor: poll: %w", err)
		}
		for k, p := range pfds {
			if p.Revents != 0 {
				s.flush(idx[k], c)
			}
		}
	}
}

func (s *session) execute(cmd Command) (Event, error) {
	var c counters
	startCPU, err := cpuTime()
	if err != nil {
		return Event{}, err
	}
	start := time.Now()
	var msgs, pongs int
	switch cmd.Cmd {
	case "rate":
		if cmd.Rate <= 0 || cmd.Messages <= 0 {
			return Event{}, errors.New("floor: rate needs rate > 0 and messages > 0")
		}
		msgs = s.rate(cmd, &c)
	case "burst":
		if cmd.Burst <= 0 || cmd.Bursts <= 0 {
			return Event{}, errors.New("floor: burst needs burst > 0 and bursts > 0")
		}
		msgs = s.burst(cmd, &c)
	case "ping":
		if cmd.DurationMs <= 0 || cmd.IntervalMs <= 0 {
			return Event{}, errors.New("floor: ping needs duration_ms > 0 and interval_ms > 0")
		}
		if msgs, pongs, err = s.ping(cmd, &c); err != nil {
			return Event{}, err
		}
	default:
		return Event{}, fmt.Errorf("floor: unknown command %q", cmd.Cmd)
	}
	if err := s.drain(&c); err != nil {
		return Event{}, err
	}
	endCPU, err := cpuTime()
	if err != nil {
		return Event{}, err
	}
	return Event{Event: "done", Messages: msgs, Pongs: pongs, Writes: c.writes, EAGAIN: c.eagain,
		CPUUs: float64((endCPU - startCPU).Microseconds()), Seconds: time.Since(start).Seconds()}, nil
}

// rate sends cmd.Messages messages on a fixed schedule; each message is
// written to every socket before the next is due.
func (s *session) rate(cmd Command, c *counters) int {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / cmd.Rate)
	var frame []byte
	for m := range cmd.Messages {
		if d := time.Until(start.Add(time.Duration(m) * interval)); d > 0 {
			time.Sleep(d)
		}
		frame = s.frame(frame[:0])
		for i := range s.fds {
			s.send(i, frame, c)
		}
	}
	return cmd.Messages
}

// burst sends rounds of back-to-back messages: one write per frame per
// socket, or with Coalesce all of a round's frames in one write per socket.
func (s *session) burst(cmd Command, c *counters) int {
	frames := make([][]byte, cmd.Burst)
	var joined []byte
	for r := range cmd.Bursts {
		if r > 0 && cmd.PauseMs > 0 {
			time.Sleep(time.Duration(cmd.PauseMs) * time.Millisecond)
		}
		if cmd.Coalesce {
			joined = joined[:0]
			for range cmd.Burst {
				joined = s.frame(joined)
			}
			for i := range s.fds {
				s.send(i, joined, c)
			}
			continue
		}
		for k := range frames {
			frames[k] = s.frame(frames[k][:0])
			for i := range s.fds {
				s.send(i, frames[k], c)
			}
		}
	}
	return cmd.Burst * cmd.Bursts
}

// cpuTime is this process's user+system CPU time.
func cpuTime() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("floor: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
