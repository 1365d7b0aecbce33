package loadclient

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
	"github.com/wsgate/wsgate/netpoll"
)

// Errors returned by Send.
var (
	ErrNotOpen   = errors.New("loadclient: connection is not open")
	ErrQueueFull = errors.New("loadclient: send queue is full")
	ErrBadOpcode = errors.New("loadclient: opcode must be text, binary, ping or pong")
)

// Opcodes for Send and OnMessage.
const (
	OpText   = byte(wsframe.OpText)
	OpBinary = byte(wsframe.OpBinary)
	OpPing   = byte(wsframe.OpPing)
	OpPong   = byte(wsframe.OpPong)
)

// Close codes reported for connections that ended without a usable server
// close frame.
const (
	CodeNoStatus      = int(wsframe.CloseNoStatus)      // close frame without a code
	CodeAbnormal      = 1006                            // TCP closed (or linger expired) without a close frame
	CodeProtocolError = int(wsframe.CloseProtocolError) // we closed: the server broke the protocol
)

// closeLinger bounds how long a closing connection waits for the server to
// close TCP after the close frames were exchanged; the server should close
// first so that TIME_WAIT stays on its side, not on our ports.
const closeLinger = 2 * time.Second

// maxReadsPerEvent bounds the reads of one dispatch so one chatty
// connection cannot monopolize a worker; level triggering brings us back.
const maxReadsPerEvent = 4

type connState uint8

const (
	stateNew       connState = iota // not dialed yet
	stateDialing                    // connect in progress
	stateHandshake                  // request sent, waiting for the 101
	stateOpen                       // frames flow
	stateClosing                    // a close frame was sent or received
	stateClosed                     // fd closed (or never opened)
)

// Requests other goroutines make; the worker carries them out.
const (
	requestAbort uint8 = 1 << iota // Dial's context ended: fail a pending dial
	requestClose                   // Conn.Close: start the closing handshake
)

// Conn is one client connection.
//
// Concurrency: netpoll runs HandleEvent for one Conn on one worker at a
// time; that worker alone reads the socket, touches the fields marked
// worker-only and closes the fd. Other goroutines only queue frames and set
// requests under mu, then Notify. mu guards state, requests, out, closeSent
// and dispatching.
type Conn struct {
	desc  netpoll.Desc
	pool  *Pool
	index int

	mu          sync.Mutex
	state       connState
	requests    uint8
	dispatching bool // a worker is in HandleEvent: it flushes before re-arming
	closeSent   bool
	out         netpoll.WriteQueue

	// Worker-only.
	started  time.Time // connect start
	key      string    // Sec-WebSocket-Key, until the 101 is checked
	head     []byte    // partial 101 response
	rd       frameReader
	reported bool // the close code was reported
	redials  int  // guarded by pool.mu
}

// reset makes a failed, closed connection new again for a redial.
func (c *Conn) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state, c.requests, c.closeSent, c.out = stateNew, 0, false, netpoll.WriteQueue{}
	c.key, c.head, c.rd, c.reported = "", nil, frameReader{}, false
}

// Index returns the connection's position in the pool, 0 … Conns-1.
func (c *Conn) Index() int { return c.index }

// Open reports whether the connection is upgraded and not closing.
func (c *Conn) Open() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen
}

// Send masks payload into a new frame and queues it; the connection's
// worker writes everything queued since its last flush with one writev.
// It never blocks. op is OpText, OpBinary, OpPing or OpPong.
func (c *Conn) Send(op byte, payload []byte) error {
	o := wsframe.Opcode(op)
	switch {
	case o != wsframe.OpText && o != wsframe.OpBinary && o != wsframe.OpPing && o != wsframe.OpPong:
		return ErrBadOpcode
	case o.IsControl() && len(payload) > wsframe.MaxControlPayload:
		return fmt.Errorf("loadclient: control payload of %d bytes exceeds 125", len(payload))
	}
	frame := ClientFrame(o, payload)
	c.mu.Lock()
	switch {
	case c.state != stateOpen || c.pool.closing.Load():
		c.mu.Unlock()
		return ErrNotOpen
	case c.out.Len()+len(frame) > c.pool.cfg.MaxQueueBytes:
		c.mu.Unlock()
		return ErrQueueFull
	}
	c.out.Push(frame)
	notify := !c.dispatching
	c.mu.Unlock()
	c.pool.messagesOut.Add(1)
	if notify {
		c.desc.Notify(netpoll.EventNotify)
	}
	return nil
}

// Close starts the closing handshake with code 1000 and returns at once;
// OnClose reports the server's answer. Closing a connection that is not
// open does nothing.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return nil
	}
	c.requests |= requestClose
	c.mu.Unlock()
	c.desc.Notify(netpoll.EventNotify)
	return nil
}

// HandleEvent is the netpoll entry point for everything that happens to c.
func (c *Conn) HandleEvent(w *netpoll.Worker, ev netpoll.Event) {
	if c.pool.closing.Load() {
		c.desc.Park() // Pool.Close closes the fd once the workers are gone
		return
	}
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return // a Notify that raced with the close
	}
	c.dispatching = true
	req := c.requests
	c.requests = 0
	c.mu.Unlock()

	c.handle(w, ev, req)
	c.finish()
}

// handle runs the state machine for one dispatch.
func (c *Conn) handle(w *netpoll.Worker, ev netpoll.Event, req uint8) {
	st := c.getState()
	if req&requestAbort != 0 && st < stateOpen {
		c.fail(errors.New("dial aborted: context done"))
		return
	}
	if req&requestClose != 0 {
		c.startClose(uint16(wsframe.CloseNormal))
	}
	if ev&netpoll.EventTimer != 0 {
		c.onTimer(st)
		if c.getState() == stateClosed {
			return
		}
	}
	if st == stateDialing {
		if ev&(netpoll.EventWrite|netpoll.EventHup) != 0 {
			c.onConnected()
		}
		return
	}
	if ev&(netpoll.EventRead|netpoll.EventHup) != 0 {
		c.onReadable(w, ev)
	}
}

// finish flushes what was queued during the dispatch and re-arms the fd,
// in one critical section with clearing dispatching, so that a concurrent
// Send either sees its frame flushed here or sends its own Notify.
func (c *Conn) finish() {
	c.mu.Lock()
	st := c.state
	var err error
	if st != stateClosed {
		err = c.flushLocked()
		if err == nil {
			err = c.desc.Rearm(st == stateDialing || !c.out.Empty())
		}
	}
	c.dispatching = false
	c.mu.Unlock()
	if err != nil && !c.pool.closing.Load() {
		c.abort(st, err)
	}
}

func (c *Conn) getState() connState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Conn) setState(s connState) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

// onConnected finishes a non-blocking connect and sends the upgrade request.
func (c *Conn) onConnected() {
	errno, err := unix.GetsockoptInt(c.desc.Fd(), unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		c.fail(fmt.Errorf("connect: getsockopt SO_ERROR: %w", err))
		return
	case errno != 0:
		c.fail(fmt.Errorf("connect %s: %w", c.pool.cfg.Addr, unix.Errno(errno)))
		return
	}
	c.key = newKey()
	c.mu.Lock()
	c.state = stateHandshake
	c.out.Push(c.pool.target.request.build(c.key))
	c.mu.Unlock()
}

// onReadable reads what the socket has, bounded per dispatch.
func (c *Conn) onReadable(w *netpoll.Worker, ev netpoll.Event) {
	for range maxReadsPerEvent {
		n, err := netpoll.Read(c.desc.Fd(), w.Scratch)
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 {
			c.onEOF(err)
			return
		}
		c.pool.bytesIn.Add(uint64(n))
		c.onData(w.Scratch[:n])
		if c.getState() == stateClosed || netpoll.Drained(n, len(w.Scratch), ev) {
			return // closed, or drained (saves a read that returns EAGAIN)
		}
	}
	c.desc.ReadLater(ev) // edge-triggered: what is left would not be reported
}

func (c *Conn) onData(p []byte) {
	switch c.getState() {
	case stateHandshake:
		c.onHandshakeData(p)
	case stateOpen, stateClosing:
		c.frames(p)
	}
}

// onHandshakeData collects the 101 response; frames that follow it in the
// same read are decoded, not dropped.
func (c *Conn) onHandshakeData(p []byte) {
	data := p
	if len(c.head) > 0 {
		c.head = append(c.head, p...)
		data = c.head
	}
	head, rest, ok := splitResponseHead(data)
	if !ok {
		if len(data) > maxResponseHead {
			c.fail(fmt.Errorf("response head exceeds %d bytes", maxResponseHead))
			return
		}
		if len(c.head) == 0 {
			c.head = append([]byte(nil), p...)
		}
		return
	}
	deflate, err := checkResponse(head, c.key, c.pool.cfg.Subprotocol, c.pool.cfg.Compression)
	if err != nil {
		c.fail(err)
		return
	}
	c.rd.deflate, c.rd.cache = deflate, c.pool.inflates
	if deflate {
		c.pool.deflated.Add(1)
	}
	c.upgraded()
	if len(rest) > 0 {
		c.frames(rest)
	}
}

func (c *Conn) upgraded() {
	c.desc.StopTimer()
	c.key, c.head = "", nil
	c.rd.maxMessage = c.pool.cfg.MaxMessageBytes
	c.setState(stateOpen)
	c.pool.dialSucceeded(c, time.Since(c.started))
	if f := c.pool.cfg.OnOpen; f != nil {
		f(c)
	}
}

// frames decodes server frames; a protocol violation closes with its code.
func (c *Conn) frames(p []byte) {
	err := c.rd.feed(p, c)
	if err == nil {
		return
	}
	var ferr *wsframe.Error
	if !errors.As(err, &ferr) {
		ferr = protocolError(wsframe.CloseInternalError, err.Error())
	}
	c.pool.protocolError(ferr)
	c.report(int(ferr.Code))
	c.startClose(ferr.Code)
}

// onMessage implements frameSink.
func (c *Conn) onMessage(op wsframe.Opcode, payload []byte) {
	c.pool.messagesIn.Add(1)
	if f := c.pool.cfg.OnMessage; f != nil {
		f(c, byte(op), payload)
	}
}

// onPing implements frameSink: the pong shares the queue with everything
// else, so frames never interleave.
func (c *Conn) onPing(payload []byte) {
	c.pool.pingsIn.Add(1)
	frame := ClientFrame(wsframe.OpPong, payload)
	c.mu.Lock()
	if !c.closeSent {
		c.out.Push(frame)
	}
	c.mu.Unlock()
}

// onClose implements frameSink: report the code, echo it, then wait for
// the server to close TCP.
func (c *Conn) onClose(code uint16) {
	c.report(int(code))
	c.startCloseAny(code)
}

// startClose starts a client-initiated close of an open connection.
func (c *Conn) startClose(code uint16) {
	if c.getState() == stateOpen {
		c.startCloseAny(code)
	}
}

// startCloseAny queues our close frame (once) and enters the closing state.
func (c *Conn) startCloseAny(code uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state >= stateClosed {
		return
	}
	if !c.closeSent {
		c.closeSent = true
		c.out.Push(clientCloseFrame(code))
	}
	c.state = stateClosing
	c.desc.SetTimer(time.Now().Add(closeLinger))
}

func (c *Conn) onEOF(err error) {
	switch c.getState() {
	case stateDialing, stateHandshake:
		if err == nil {
			err = errors.New("server closed the connection")
		}
		c.fail(fmt.Errorf("during handshake: %w", err))
	default:
		c.report(CodeAbnormal)
		c.closeNow()
	}
}

func (c *Conn) onTimer(st connState) {
	switch st {
	case stateDialing, stateHandshake:
		what := "connect"
		if st == stateHandshake {
			what = "upgrade response"
		}
		c.fail(fmt.Errorf("handshake timeout after %v waiting for the %s", c.pool.cfg.HandshakeTimeout, what))
	case stateClosing:
		c.report(CodeAbnormal)
		c.closeNow()
	}
}

// abort ends the connection after an I/O error outside the read path.
func (c *Conn) abort(st connState, err error) {
	if st < stateOpen {
		c.fail(err)
		return
	}
	c.report(CodeAbnormal)
	c.closeNow()
}

// fail ends a dial that did not reach the open state.
func (c *Conn) fail(err error) {
	if c.pool.cfg.ResetOnClose {
		c.lingerZero()
	}
	c.closeNow()
	c.key, c.head = "", nil
	c.pool.dialFailed(c, err)
}

// report records how an upgraded connection ended, once.
func (c *Conn) report(code int) {
	if c.reported {
		return
	}
	c.reported = true
	c.pool.connClosed(code)
	if f := c.pool.cfg.OnClose; f != nil {
		f(c, code)
	}
}

// lingerZero sets SO_LINGER to 0 so that the close that follows sends an
// RST. Pool.Close only (the workers are gone).
func (c *Conn) lingerZero() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateNew || c.state == stateClosed {
		return
	}
	// A socket that refuses it is closed normally: nothing else to do.
	_ = unix.SetsockoptLinger(c.desc.Fd(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

// closeNow unregisters and closes the fd. Worker (or Pool.Close) only.
func (c *Conn) closeNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *Conn) closeLocked() {
	if c.state == stateClosed {
		return
	}
	registered := c.state != stateNew
	c.state = stateClosed
	c.out = netpoll.WriteQueue{}
	if registered {
		// The fd is gone whatever Close says; there is nobody to tell.
		_ = c.desc.Close()
	}
}

// flushLocked writes as much of the queue as the socket takes, up to
// MaxIovecs frames per writev.
func (c *Conn) flushLocked() error {
	if _, err := c.out.Flush(c.desc.Fd()); err != nil {
		c.out = netpoll.WriteQueue{}
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
