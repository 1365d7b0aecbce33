package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// A non-reader is a subscriber that stops reading right after its subscribe
// reply. loadclient's pools always read, so non-readers are blocking
// connections of loadclient's blocking client: one goroutine each while
// they dial and while they drain, none while they hold still.

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

// closeAbnormal is the outcome of a connection that ended without a close
// frame (RFC 6455 §7.1.5).
const closeAbnormal = 1006

// nonReaderMaxMessage bounds a message a non-reader reads.
const nonReaderMaxMessage = 16 << 20

// nonReader is one non-reading subscriber's connection.
type nonReader struct {
	conn net.Conn
	in   *loadclient.MessageReader
}

// Close closes the connection.
func (n *nonReader) Close() error { return n.conn.Close() }

// dialNonReader connects with a small SO_RCVBUF, subscribes to channel and
// waits for the reply.
func dialNonReader(ctx context.Context, addr, path, channel string) (*nonReader, error) {
	conn, err := loadclient.Dialer{RcvBuf: nonReaderRcvbuf, Timeout: 10 * time.Second}.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	status, rest, err := loadclient.Upgrade(conn, addr, path, codec.SubprotocolMsgpack)
	if err == nil && status != "101" {
		err = fmt.Errorf("upgrade refused: status %s", status)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	// Pings are answered while reading, as a browser would.
	n := &nonReader{conn: conn, in: loadclient.NewMessageReader(io.MultiReader(bytes.NewReader(rest), conn), conn, nonReaderMaxMessage)}
	if err := n.subscribe(channel); err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}

func (n *nonReader) subscribe(channel string) error {
	cmd := codec.Command{ID: subscribeID, Cmd: codec.CmdSubscribe, Channel: []byte(channel)}
	b, err := codec.AppendCommand(nil, codec.Msgpack, &cmd)
	if err != nil {
		return err
	}
	if _, err := n.conn.Write(loadclient.ClientFrame(wsframe.OpBinary, b)); err != nil {
		return fmt.Errorf("send subscribe: %w", err)
	}
	_ = n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = n.conn.SetReadDeadline(time.Time{}) }()
	for {
		msg, err := n.in.Next()
		if err != nil {
			return fmt.Errorf("wait for the subscribe reply: %w", err)
		}
		f, err := wire.ParsePush(msg.Payload)
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
func drain(n *nonReader, channel []byte, want uint64) string {
	defer n.Close()
	_ = n.conn.SetReadDeadline(time.Now().Add(nonReaderDrainTimeout))
	var got uint64
	for got < want {
		msg, err := n.in.Next()
		if err != nil {
			return outcomeOf(err)
		}
		if f, err := wire.ParsePush(msg.Payload); err == nil && f.IsMessage() && bytes.Equal(f.Channel, channel) {
			got++
		}
	}
	return outcomeOpen
}

func outcomeOf(err error) string {
	var ce *loadclient.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return strconv.Itoa(ce.Code)
	case errors.As(err, &ne) && ne.Timeout():
		return outcomeOpen
	default: // EOF, reset: no close frame (1006, never sent either)
		return strconv.Itoa(closeAbnormal)
	}
}
