package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/codec"
)

// A non-reader is a subscriber that stops reading right after its subscribe
// reply. loadclient always reads, so non-readers are plain gorilla
// connections: one goroutine each while they dial and while they drain,
// none while they hold still.

// nonReaderRcvbuf is the receive buffer set before connect (the kernel
// doubles it): the advertised window stays a few KiB, so what the gateway
// sends piles up on its side — first in its socket's send buffer (which
// autotunes up to net.ipv4.tcp_wmem's maximum, a few MiB), then in its
// per-connection queue, which is what --max-queue-bytes bounds.
const nonReaderRcvbuf = 4096

// nonReaderDrainTimeout bounds the read to the end after resuming.
const nonReaderDrainTimeout = 15 * time.Second

// outcomeOpen is a non-reader's outcome when it was not closed: it got
// every publication once it read again, or the drain timed out.
const outcomeOpen = "open"

// dialNonReader connects with a small SO_RCVBUF, subscribes to channel and
// waits for the reply.
func dialNonReader(ctx context.Context, addr, path, channel string) (*websocket.Conn, error) {
	nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, nonReaderRcvbuf)
		})
		return errors.Join(err, serr)
	}}
	d := websocket.Dialer{NetDialContext: nd.DialContext, Subprotocols: []string{codec.SubprotocolMsgpack},
		HandshakeTimeout: 10 * time.Second, ReadBufferSize: nonReaderRcvbuf, WriteBufferSize: 1024}
	conn, resp, err := d.DialContext(ctx, "ws://"+addr+path, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	resp.Body.Close()
	if err := subscribeNonReader(conn, channel); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func subscribeNonReader(conn *websocket.Conn, channel string) error {
	cmd := codec.Command{ID: subscribeID, Cmd: codec.CmdSubscribe, Channel: []byte(channel)}
	b, err := codec.AppendCommand(nil, codec.Msgpack, &cmd)
	if err != nil {
		return err
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return fmt.Errorf("send subscribe: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("wait for the subscribe reply: %w", err)
		}
		f, err := wire.ParsePush(msg)
		if err != nil {
			return err
		}
		if !f.IsReply() {
			continue
		}
		if f.HasError {
			return fmt.Errorf("subscribe: %d %s", f.ErrorCode, f.ErrorMessage)
		}
		return nil
	}
}

// drain reads what the gateway sends until it closes the connection or
// every one of the want publications of channel arrived (then the
// non-reader was never cut off: outcomeOpen), and returns the outcome: the
// close code as a string, "1006" when TCP ended without a close frame, or
// outcomeOpen.
func drain(conn *websocket.Conn, channel []byte, want uint64) string {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(nonReaderDrainTimeout))
	var got uint64
	for got < want {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return outcomeOf(err)
		}
		if f, err := wire.ParsePush(msg); err == nil && f.IsMessage() && bytes.Equal(f.Channel, channel) {
			got++
		}
	}
	return outcomeOpen
}

func outcomeOf(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return strconv.Itoa(ce.Code)
	case errors.As(err, &ne) && ne.Timeout():
		return outcomeOpen
	default: // EOF, reset: no close frame
		return strconv.Itoa(websocket.CloseAbnormalClosure)
	}
}
