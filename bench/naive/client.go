package naive

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
)

// Close codes this server sends itself (gorilla sends 1002 and 1009 on its
// own when it detects a protocol error or an oversized message).
const (
	closeGoingAway    = websocket.CloseGoingAway               // 1001: shutdown
	closeUnsupported  = websocket.CloseUnsupportedData         // 1003: wrong frame type
	closeInvalid      = websocket.CloseInvalidFramePayloadData // 1007: not a command
	closeSlowConsumer = 4008                                   // send channel full
)

// closeGrace is how long the writer waits for the client's answer to its
// close frame before closing the socket anyway.
const closeGrace = time.Second

// outbound is one message on a send channel: a broadcast push framed once
// for every subscriber (prepared), a broadcast payload every subscriber
// writes (and gorilla compresses) itself (per-connection compression
// mode; data is shared and never modified), or a message for this client
// alone (a reply, an echo). A pointer keeps the channel's buffer at 8
// bytes per slot.
type outbound struct {
	prepared *websocket.PreparedMessage
	msgType  int
	data     []byte
}

// client is one WebSocket connection, served by exactly two goroutines:
// readLoop (commands in) and writeLoop (everything out), joined by send.
type client struct {
	srv  *Server
	conn *websocket.Conn
	enc  codec.Encoding
	echo bool // the /echo endpoint: no protocol, messages come back as they are

	send chan *outbound

	// done is closed once when the connection must end; closeCode (0: no
	// close frame) and closeText are set just before.
	stopOnce  sync.Once
	stopped   atomic.Bool
	done      chan struct{}
	closeCode int
	closeText string
	readDone  chan struct{}

	subs []string // subscribed channels; owned by readLoop
}

func newClient(s *Server, conn *websocket.Conn, enc codec.Encoding, echo bool) *client {
	return &client{
		srv: s, conn: conn, enc: enc, echo: echo,
		send:     make(chan *outbound, s.cfg.SendBuffer),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// stop asks the writer to end the connection, with a close frame carrying
// code unless code is 0. Only the first call counts.
func (c *client) stop(code int, text string) {
	c.stopOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		c.stopped.Store(true)
		close(c.done)
	})
}

// trySend queues m without blocking. A full channel means the client does
// not keep up: it is dropped (4008) rather than allowed to hold up the
// goroutine that is fanning out or replying.
func (c *client) trySend(m *outbound) bool {
	if c.stopped.Load() {
		return false
	}
	select {
	case c.send <- m:
		return true
	default:
		c.srv.metrics.SlowConsumers.Add(1)
		c.stop(closeSlowConsumer, "slow consumer")
		return false
	}
}

// sendWait queues m, waiting for room: the echo endpoint pushes back on a
// client that sends faster than it reads, as a single-goroutine echo loop
// would, instead of dropping it.
func (c *client) sendWait(m *outbound) bool {
	select {
	case c.send <- m:
		return true
	case <-c.done:
		return false
	}
}

// reply queues an encoded reply for this client.
func (c *client) reply(payload []byte) {
	if c.trySend(&outbound{msgType: messageType(c.enc), data: payload}) {
		c.srv.metrics.FramesOut.Add(1)
	}
}

func messageType(enc codec.Encoding) int {
	if enc == codec.JSON {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}

// readLoop reads messages until the connection fails or closes, then
// unsubscribes the client and tells the writer to finish.
func (c *client) readLoop() {
	defer c.srv.wg.Done()
	defer close(c.readDone)
	defer c.stop(0, "")
	defer c.leaveAll()

	cfg := &c.srv.cfg
	c.conn.SetReadLimit(int64(cfg.MaxMessageBytes))
	_ = c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})
	for {
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			c.countReadError(err)
			return
		}
		c.srv.metrics.MessagesIn.Add(1)
		if c.stopped.Load() {
			continue // closing: wait for the client's close frame, ignore the rest
		}
		if c.echo {
			if c.sendWait(&outbound{msgType: mt, data: data}) {
				c.srv.metrics.FramesOut.Add(1)
			}
			continue
		}
		c.onMessage(mt, data)
	}
}

// countReadError records why a read ended when it was the client's fault
// or silence; gorilla has already sent 1002 or 1009 where they apply.
func (c *client) countReadError(err error) {
	var netErr net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		c.srv.metrics.ProtocolErrors.Add(1)
	case errors.As(err, &netErr) && netErr.Timeout():
		c.srv.metrics.PongTimeouts.Add(1)
	case websocket.IsCloseError(err, websocket.CloseProtocolError):
		c.srv.metrics.ProtocolErrors.Add(1)
	}
}

// writeLoop is the connection's only writer: queued messages, pings and the
// final close frame all go through it.
func (c *client) writeLoop() {
	ticker := time.NewTicker(c.srv.cfg.PingInterval)
	defer c.srv.wg.Done()
	defer c.srv.unregister(c)
	defer c.conn.Close()
	defer ticker.Stop()
	for {
		select {
		case m := <-c.send:
			if err := c.write(m); err != nil {
				c.stop(0, "")
				return
			}
		case <-ticker.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, c.deadline()); err != nil {
				c.stop(0, "")
				return
			}
		case <-c.done:
			c.closeHandshake()
			return
		}
	}
}

func (c *client) deadline() time.Time { return time.Now().Add(c.srv.cfg.WriteWait) }

func (c *client) write(m *outbound) error {
	_ = c.conn.SetWriteDeadline(c.deadline())
	if m.prepared != nil {
		return c.conn.WritePreparedMessage(m.prepared)
	}
	return c.conn.WriteMessage(m.msgType, m.data)
}

// closeHandshake sends the close frame, if any, and gives the client a
// moment to answer it (the reader returns when the answer arrives) so the
// client sees a clean close rather than a reset.
func (c *client) closeHandshake() {
	if c.closeCode == 0 {
		return
	}
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, c.deadline()); err != nil {
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
}
