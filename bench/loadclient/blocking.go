package loadclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// The blocking client: one socket driven by hand, for the clients that
// misbehave on purpose (the abuse scenario's flooder, connection storm and
// stalled clients, the slow scenario's sleepers). They write what a
// well-behaved client never would, or never read, so they cannot live in
// a Pool; they still share its upgrade request, response check and frame
// codec, so every client of the harness speaks the same WebSocket.

// DialFrom connects to addr from the local address src (an IPv4 address,
// "" for any) with IP_BIND_ADDRESS_NO_PORT: the port is then picked per
// 4-tuple at connect, not per address at bind, so storms can reuse ports
// that linger in TIME_WAIT towards other destinations.
func DialFrom(addr, src string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		})
		return errors.Join(err, serr)
	}}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d.Dial("tcp4", addr)
}

// Upgrade sends an upgrade request for path to host on rw and reads the
// response head. status is the response's status code ("" when none was
// read); a 101 is checked like a pool's (RFC 6455 §4.1) and rest holds
// the bytes that came after the head (the first frames). A server that
// refuses a connection may close it before the request is written: its
// status is still read, and err is then nil.
func Upgrade(rw io.ReadWriter, host, path string) (status string, rest []byte, err error) {
	key := newKey()
	_, werr := rw.Write(newRequestTemplate(host, path, "", "", false).build(key))
	head, rest, rerr := readResponseHead(rw)
	if rerr != nil {
		if werr != nil {
			return "", nil, fmt.Errorf("send upgrade: %w", werr)
		}
		return "", nil, rerr
	}
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	if f := strings.Fields(string(line)); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/1.") {
		status = f[1]
	} else {
		return "", nil, fmt.Errorf("bad status line %q", line)
	}
	if status != "101" {
		return status, nil, nil
	}
	if _, err := checkResponse(head, key, "", false); err != nil {
		return status, nil, err
	}
	return status, rest, nil
}

// readResponseHead reads until the end of the response head.
func readResponseHead(r io.Reader) (head, rest []byte, err error) {
	var buf []byte
	chunk := make([]byte, 1024)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if head, rest, ok := splitResponseHead(buf); ok {
			return head, rest, nil
		}
		switch {
		case len(buf) > maxResponseHead:
			return nil, nil, errors.New("upgrade response head too large")
		case errors.Is(err, io.EOF):
			return nil, nil, errors.New("server closed during the upgrade")
		case err != nil:
			return nil, nil, fmt.Errorf("read upgrade response: %w", err)
		}
	}
}

// FrameHandlers receive what ReadFrames reads. Payloads are only valid
// during the call; either may be nil.
type FrameHandlers struct {
	Message func(op byte, payload []byte)
	Close   func(code int) // the close frame's code, 1005 for none
}

// ReadFrames reads server frames from r (pings are not answered) until a
// close frame, which it returns nil after, a protocol error or a read
// error (io.EOF: the server closed without a close frame).
func ReadFrames(r io.Reader, maxMessage int, h FrameHandlers) error {
	fr := frameReader{maxMessage: maxMessage}
	sink := handlerSink{h}
	buf := make([]byte, 32<<10)
	for !fr.closed {
		n, err := r.Read(buf)
		if ferr := fr.feed(buf[:n], sink); ferr != nil {
			return ferr
		}
		if err != nil && !fr.closed {
			return err
		}
	}
	return nil
}

// handlerSink is the frameSink of ReadFrames.
type handlerSink struct{ h FrameHandlers }

func (s handlerSink) onMessage(op wsframe.Opcode, payload []byte) {
	if s.h.Message != nil {
		s.h.Message(byte(op), payload)
	}
}

func (s handlerSink) onPing([]byte) {}

func (s handlerSink) onClose(code uint16) {
	if s.h.Close != nil {
		s.h.Close(int(code))
	}
}

// WriteAll writes all of b to the blocking socket fd.
func WriteAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
