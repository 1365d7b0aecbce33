package loadclient

import (
	"bytes"
	"context"
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

// Dialer opens a blocking client socket.
type Dialer struct {
	// Src is the local IPv4 address ("" for any), bound with
	// IP_BIND_ADDRESS_NO_PORT: the port is then picked per 4-tuple at
	// connect, not per address at bind, so storms can reuse ports that
	// linger in TIME_WAIT towards other destinations.
	Src string
	// RcvBuf is SO_RCVBUF, set before connect so the advertised window
	// stays that small (0: the kernel's default).
	RcvBuf  int
	Timeout time.Duration
}

// Dial connects to addr (IPv4 host:port).
func (d Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			if serr == nil && d.RcvBuf > 0 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, d.RcvBuf)
			}
		})
		return errors.Join(err, serr)
	}}
	if d.Src != "" {
		nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(d.Src)}
	}
	return nd.DialContext(ctx, "tcp4", addr)
}

// Upgrade sends an upgrade request for path to host on rw, offering
// subprotocol unless it is "", and reads the response head. status is the response's status code ("" when none was
// read); a 101 is checked like a pool's (RFC 6455 §4.1) and rest holds
// the bytes that came after the head (the first frames). A server that
// refuses a connection may close it before the request is written: its
// status is still read, and err is then nil.
func Upgrade(rw io.ReadWriter, host, path, subprotocol string) (status string, rest []byte, err error) {
	key := newKey()
	_, werr := rw.Write(newRequestTemplate(host, path, subprotocol, "", false).build(key))
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
	if _, err := checkResponse(head, key, subprotocol, false); err != nil {
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

// MessageReader reads a blocking connection's server messages one at a
// time, keeping what it read past the message for the next call.
type MessageReader struct {
	r     io.Reader
	pong  io.Writer
	fr    frameReader
	buf   []byte
	queue []Message
	close *CloseError
}

// Message is one server message: its opcode (OpText, OpBinary) and
// payload.
type Message struct {
	Op      byte
	Payload []byte
}

// CloseError is what Next returns once the server's close frame arrived.
type CloseError struct{ Code int } // 1005 when the frame had no code

func (e *CloseError) Error() string { return fmt.Sprintf("closed by the server (%d)", e.Code) }

// NewMessageReader reads from r (a connection, or what came with the
// upgrade followed by it). When pong is set, pings are answered on it as
// a browser would; messages over maxMessage bytes are a protocol error.
func NewMessageReader(r io.Reader, pong io.Writer, maxMessage int) *MessageReader {
	return &MessageReader{r: r, pong: pong, fr: frameReader{maxMessage: maxMessage}, buf: make([]byte, 32<<10)}
}

// Next returns the next message: a *CloseError after the close frame, a
// *wsframe.Error when the server broke the protocol, the read's error
// otherwise (io.EOF: the server closed without a close frame).
func (m *MessageReader) Next() (Message, error) {
	for len(m.queue) == 0 {
		if m.close != nil {
			return Message{}, m.close
		}
		n, err := m.r.Read(m.buf)
		if ferr := m.fr.feed(m.buf[:n], m); ferr != nil {
			return Message{}, ferr
		}
		if err != nil && len(m.queue) == 0 && m.close == nil {
			return Message{}, err
		}
	}
	msg := m.queue[0]
	m.queue = m.queue[1:]
	return msg, nil
}

// The frameSink of a MessageReader: a message is copied (the frame reader
// reuses its buffers), a ping answered, a close kept for Next.

func (m *MessageReader) onMessage(op wsframe.Opcode, payload []byte) {
	m.queue = append(m.queue, Message{Op: byte(op), Payload: append([]byte(nil), payload...)})
}

func (m *MessageReader) onPing(payload []byte) {
	if m.pong != nil {
		_, _ = m.pong.Write(ClientFrame(wsframe.OpPong, payload))
	}
}

func (m *MessageReader) onClose(code uint16) { m.close = &CloseError{Code: int(code)} }

// FrameHandlers receive what ReadFrames reads; either may be nil.
type FrameHandlers struct {
	Message func(op byte, payload []byte)
	Close   func(code int) // the close frame's code, 1005 for none
}

// ReadFrames reads server messages from r (pings are not answered) until
// a close frame, which it returns nil after, a protocol error or a read
// error (io.EOF: the server closed without a close frame).
func ReadFrames(r io.Reader, maxMessage int, h FrameHandlers) error {
	m := NewMessageReader(r, nil, maxMessage)
	for {
		msg, err := m.Next()
		var ce *CloseError
		switch {
		case errors.As(err, &ce):
			if h.Close != nil {
				h.Close(ce.Code)
			}
			return nil
		case err != nil:
			return err
		case h.Message != nil:
			h.Message(msg.Op, msg.Payload)
		}
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
