package gateway

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
	"github.com/wsgate/wsgate/netpoll"
)

// connState is a connection's place in its lifecycle.
type connState uint8

const (
	stateHandshake connState = iota // reading the HTTP upgrade request
	stateOpen                       // WebSocket frames flow
	stateClosing                    // close frame queued; waiting to flush and for the peer
	stateClosed                     // fd closed, unregistered
)

// netpollNotify wakes a connection's worker for requests.
const netpollNotify = netpoll.EventNotify

// Close codes wsgate sends besides the RFC ones (see DESIGN.md).
const (
	CloseSlowConsumer uint16 = 4008
)

// closeLinger bounds how long a closing connection waits for its close frame
// to flush and for the peer to close its side.
const closeLinger = 2 * time.Second

// maxDiscard bounds the input read and dropped from a closing connection.
const maxDiscard = 64 << 10

// maxReadsPerEvent bounds the reads one dispatch makes, so one busy client
// cannot monopolize a worker; level triggering brings us back for the rest.
const maxReadsPerEvent = 4

// Pending requests from other goroutines, handled on the worker (only the
// worker that owns a dispatch may close the fd).
const (
	requestDrain uint8 = 1 << iota // graceful shutdown: close with 1001
	requestKill                    // shutdown deadline: close now
)

// conn is one client connection. It is pointer-light and has no buffers
// while idle: in is allocated only while a handshake or frame is partial,
// out only while frames wait for the socket.
//
// Concurrency: netpoll runs HandleEvent for one conn on one worker at a
// time; that worker alone reads the socket, touches in, and closes the fd.
// Other goroutines (fan-out writers, shutdown) only queue frames and set
// requests under mu, then Notify. mu guards state, out and requests.
type conn struct {
	desc netpoll.Desc
	srv  *Server

	mu       sync.Mutex
	state    connState
	endpoint Endpoint
	closeIn  bool     // peer's close frame received
	shutWr   bool     // our side shut down after the close frame was flushed
	requests uint8    // requestDrain | requestKill
	pending  []func() // work for the worker (server API), see runOnWorker
	out      *netpoll.WriteQueue

	in       *inbound     // worker-only
	sess     *session     // client protocol state (EndpointWS only)
	hookWait bool         // worker-only: a connect hook is running for us
	hookDone *hookOutcome // its outcome, set by the hook goroutine under mu

	// recovering holds live frames of channels whose history is being
	// delivered (subscribe with a resume position); nil otherwise. Guarded
	// by mu.
	recovering map[string]*recovery
	// resumedTop: per channel just resumed, the last replayed offset, until
	// a newer live publication arrives. Guarded by mu.
	resumedTop map[string]uint64
	// closedForError: we are closing because the client broke the
	// protocol or a limit; discarded counts what it sent since (worker-only).
	closedForError bool
	discarded      int32

	// Worker-only heartbeat bookkeeping, nanoseconds since server start.
	lastRead   int64
	pingSentAt int64
}

// inbound is a connection's partial input: a handshake that has not fully
// arrived, or a frame decoder with leftover bytes. Pooled.
type inbound struct {
	dec      wsframe.Decoder
	leftover []byte // ≤ wsframe.MaxLeftover bytes, or a partial handshake
}

var inboundPool = sync.Pool{New: func() any { return new(inbound) }}

// HandleEvent is the netpoll entry point for everything that happens to c.
func (c *conn) HandleEvent(w *netpoll.Worker, ev netpoll.Event) {
	now := c.srv.now()
	if ev&netpoll.EventNotify != 0 {
		c.onRequests()
		c.runPending()
		c.finishHook()
	}
	if ev&netpoll.EventTimer != 0 {
		c.onTimer(now)
	}
	if ev&netpoll.EventWrite != 0 {
		c.mu.Lock()
		c.flushLocked(true)
		c.mu.Unlock()
	}
	// A timer or request above may have closed the fd; its number may
	// already belong to a new connection, so never read it again.
	if ev&(netpoll.EventRead|netpoll.EventHup) != 0 && !c.stateIs(stateClosed) {
		c.onReadable(w, now)
	}
	c.mu.Lock()
	c.finishCloseLocked()
	if c.state != stateClosed {
		if err := c.desc.Rearm(c.out != nil); err != nil {
			c.closeNowLocked()
		}
	}
	closed := c.state == stateClosed
	c.mu.Unlock()
	if closed {
		c.leaveChannels()
	}
}

// leaveChannels unsubscribes a closed connection from the hub. It runs
// without c.mu: the hub never takes a connection lock under its own, and
// neither may we.
func (c *conn) leaveChannels() {
	if c.sess != nil {
		c.sess.leaveAll(c)
	}
}

// onReadable reads what the socket has (bounded per dispatch) and feeds it
// to the handshake parser or the frame decoder.
func (c *conn) onReadable(w *netpoll.Worker, now int64) {
	for range maxReadsPerEvent {
		buf := w.Scratch
		off := 0
		if c.in != nil {
			off = copy(buf, c.in.leftover)
		}
		n, err := netpoll.Read(c.desc.Fd(), buf[off:])
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 { // EOF or error: the peer is gone
			c.mu.Lock()
			c.closeNowLocked()
			c.mu.Unlock()
			return
		}
		c.lastRead = now
		c.consume(buf[:off+n])
		if c.stateIs(stateClosed) || off+n < len(buf) {
			return // closed, or the socket is drained (saves a read returning EAGAIN)
		}
	}
}

func (c *conn) stateIs(s connState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == s
}

// consume processes a contiguous input chunk (leftover + new bytes).
func (c *conn) consume(data []byte) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	switch {
	case st == stateHandshake && c.hookWait:
		// More bytes while the connect hook runs: keep them, bounded.
		if len(data) > c.srv.cfg.MaxHandshakeBytes+c.srv.cfg.MaxMessageBytes {
			c.protocolError(&wsframe.Error{Code: wsframe.ClosePolicyViolation, Reason: "too much data before the upgrade"})
			return
		}
		c.setLeftover(data)
	case st == stateHandshake:
		c.handshake(data)
	case st == stateOpen:
		c.frames(data)
	default:
		// Closing: input is no longer interesting. A client that keeps
		// sending (a flooder we just closed) is not read for the whole
		// linger: past maxDiscard bytes it is closed at once.
		c.setLeftover(nil)
		if !c.closedForError {
			return
		}
		c.discarded = int32(min(int(c.discarded)+len(data), maxDiscard+1))
		if c.discarded > maxDiscard {
			c.mu.Lock()
			c.closeNowLocked()
			c.mu.Unlock()
		}
	}
}

// handshake waits for a complete request head, upgrades, and hands bytes
// that followed the request to the frame decoder.
func (c *conn) handshake(data []byte) { c.handshakeWith(data, nil) }

// handshakeWith is handshake with a connect hook's outcome, if one ran.
func (c *conn) handshakeWith(data []byte, hook *hookOutcome) {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		if len(data) > c.srv.cfg.MaxHandshakeBytes {
			c.srv.metrics.HandshakesFailed.Add(1)
			c.rejectHandshake([]byte(httpError(431, "request header too large")))
			return
		}
		c.setLeftover(data)
		return
	}
	if end+4 > c.srv.cfg.MaxHandshakeBytes {
		c.srv.metrics.HandshakesFailed.Add(1)
		c.rejectHandshake([]byte(httpError(431, "request header too large")))
		return
	}
	if c.srv.draining() {
		// Shutting down: a balancer retries a 503 on another instance.
		c.srv.metrics.RefusedDraining.Add(1)
		c.rejectHandshake(busyResponse)
		return
	}
	res := c.srv.upgrader.upgradeWith(data[:end+4], hook)
	if res.deferred != nil {
		if !c.startHook(res.deferred, data) {
			c.srv.metrics.HandshakesBusy.Add(1)
			c.rejectHandshake(busyResponse)
		}
		return
	}
	rest := data[end+4:]
	c.setLeftover(nil)
	if !res.ok {
		if !res.static {
			c.srv.metrics.HandshakesFailed.Add(1)
		}
		c.rejectHandshake(res.response)
		return
	}
	if res.endpoint == EndpointWS && !c.srv.limits.admitUser(res.identity.UserID) {
		c.srv.metrics.HandshakesFailed.Add(1)
		c.rejectHandshake([]byte(httpError(429, "too many connections for this user")))
		return
	}
	c.srv.metrics.HandshakesActive.Add(-1)
	c.srv.metrics.ConnsUpgraded.Add(1)
	var sess *session
	if res.endpoint == EndpointWS {
		sess = newSession(res.protocol, c.srv.newClientID(), res.identity)
		sess.limiter = newLimiter(c.srv.cfg.CommandRate, c.srv.cfg.CommandBurst, c.srv.now())
	}
	c.mu.Lock()
	c.state, c.endpoint, c.sess = stateOpen, res.endpoint, sess
	c.queueLocked(res.response)
	c.flushLocked(true)
	c.mu.Unlock()
	next := c.srv.at(c.lastRead + int64(c.srv.cfg.PingInterval))
	if sess != nil && !sess.identity.ExpiresAt.IsZero() && sess.identity.ExpiresAt.Before(next) {
		next = sess.identity.ExpiresAt // the token expires before the first ping
	}
	c.desc.SetTimer(next)
	if len(rest) > 0 {
		c.frames(rest)
	}
}

// rejectHandshake sends an HTTP error response and closes once it is out.
func (c *conn) rejectHandshake(resp []byte) {
	c.setLeftover(nil)
	c.srv.metrics.HandshakesActive.Add(-1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queueLocked(resp)
	// Shut down our side once the response is out and wait (bounded) for
	// the client's EOF: closing with unread input would send an RST that
	// can destroy the response before the client reads it.
	c.state = stateClosing
	c.flushLocked(true)
	c.desc.SetTimer(c.srv.at(c.srv.now() + int64(closeLinger)))
}

// frames runs the frame decoder over data and keeps what it left over.
func (c *conn) frames(data []byte) {
	in := c.inbound()
	n, err := in.dec.Decode(data, c)
	if err != nil {
		c.setLeftover(nil)
		c.protocolError(err)
		return
	}
	c.setLeftover(data[n:])
	c.mu.Lock()
	c.flushLocked(true)
	c.mu.Unlock()
}

func (c *conn) protocolError(err error) {
	var ferr *wsframe.Error
	if !errors.As(err, &ferr) {
		ferr = &wsframe.Error{Code: wsframe.CloseInternalError, Reason: "internal error"}
	}
	if ferr.Code != CloseRateLimited { // counted as rate limited already
		c.srv.metrics.ProtocolErrors.Add(1)
	}
	c.closedForError = true
	c.mu.Lock()
	c.startCloseLocked(ferr.Code, ferr.Reason, false)
	c.mu.Unlock()
}

func (c *conn) inbound() *inbound {
	if c.in == nil {
		c.in = inboundPool.Get().(*inbound)
		c.in.dec.MaxMessage = c.srv.cfg.MaxMessageBytes
	}
	return c.in
}

// setLeftover keeps b (a copy) for the next read, or releases the inbound
// state when nothing partial remains.
func (c *conn) setLeftover(b []byte) {
	if len(b) == 0 && (c.in == nil || c.in.dec.Idle()) {
		c.releaseInbound()
		return
	}
	in := c.inbound()
	in.leftover = append(in.leftover[:0], b...)
}

func (c *conn) releaseInbound() {
	if c.in == nil {
		return
	}
	c.in.dec.Reset()
	if cap(c.in.leftover) > wsframe.MaxLeftover {
		c.in.leftover = nil // a big partial handshake: don't pool it
	}
	c.in.leftover = c.in.leftover[:0]
	inboundPool.Put(c.in)
	c.in = nil
}

// OnMessage implements wsframe.Sink.
func (c *conn) OnMessage(op wsframe.Opcode, payload []byte) error {
	c.srv.metrics.MessagesIn.Add(1)
	if c.endpoint == EndpointEcho {
		c.send(wsframe.Frame(op, payload))
		return nil
	}
	return c.onCommand(op, payload)
}

// OnPing implements wsframe.Sink: the pong goes through the same queue as
// everything else (one writer per connection).
func (c *conn) OnPing(payload []byte) { c.send(wsframe.Frame(wsframe.OpPong, payload)) }

// OnPong implements wsframe.Sink. Any frame counts as liveness (lastRead).
func (c *conn) OnPong([]byte) {}

// OnClose implements wsframe.Sink: echo the code and close.
func (c *conn) OnClose(code uint16, _ []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeIn = true
	if code == wsframe.CloseNoStatus {
		code = 0
	}
	c.startCloseLocked(code, "", false)
}

// send queues one frame without flushing; the worker flushes after the
// read batch, so replies to pipelined requests share one writev.
func (c *conn) send(frame []byte) {
	c.mu.Lock()
	c.queueLocked(frame)
	c.mu.Unlock()
}

// queueLocked appends a frame, enforcing MaxQueueBytes.
func (c *conn) queueLocked(frame []byte) {
	if c.state >= stateClosing {
		return // the close frame is the last one
	}
	if c.out == nil {
		c.out = getOutQueue()
	}
	if c.out.Len()+len(frame) > c.srv.cfg.MaxQueueBytes {
		c.srv.metrics.SlowConsumers.Add(1)
		c.startCloseLocked(CloseSlowConsumer, "slow consumer", true)
		return
	}
	c.pushLocked(frame)
}

// pushLocked appends a frame without the queue limit check.
func (c *conn) pushLocked(frame []byte) {
	if c.state >= stateClosing {
		return
	}
	if c.out == nil {
		c.out = getOutQueue()
	}
	c.out.Push(frame)
	c.srv.metrics.FramesOut.Add(1)
}

// startCloseLocked queues a close frame (code 0: empty payload) and enters
// the closing state. dropQueued discards frames not yet started (slow
// consumer: they would never drain).
func (c *conn) startCloseLocked(code uint16, reason string, dropQueued bool) {
	if c.state >= stateClosing {
		return
	}
	if c.state == stateHandshake {
		c.srv.metrics.HandshakesActive.Add(-1)
	}
	if c.out == nil {
		c.out = getOutQueue()
	}
	linger := closeLinger
	if dropQueued {
		c.out.DropUnstarted()
		// A slow consumer can only see its close code once it reads again;
		// give it as long as any silent connection gets before it is
		// declared dead.
		linger = c.srv.cfg.PingInterval + c.srv.cfg.PongTimeout
	}
	c.out.Push(wsframe.CloseFrame(code, reason))
	c.state = stateClosing
	c.desc.SetTimer(c.srv.at(c.srv.now() + int64(linger)))
}

// flushLocked writes as much of the queue as the socket takes, in one
// writev per MaxIovecs frames. onWorker says whether the caller owns the
// dispatch; otherwise write interest is added with ArmIfIdle.
func (c *conn) flushLocked(onWorker bool) {
	if c.state == stateClosed || c.out == nil {
		return
	}
	writes, err := c.out.Flush(c.desc.Fd())
	c.srv.metrics.Writevs.Add(int64(writes))
	if err != nil { // peer reset: nothing more can be sent
		c.out.Reset()
		c.closeIn = true
		c.state = max(c.state, stateClosing)
	}
	if c.out.Empty() {
		putOutQueue(c.out)
		c.out = nil
	} else if !onWorker {
		if err := c.desc.ArmIfIdle(true); err != nil {
			c.requests |= requestKill
		}
	}
	if !onWorker && c.state == stateClosing && c.out == nil {
		c.desc.Notify(netpoll.EventNotify) // let the worker finish the close
	}
}

// finishCloseLocked completes a close once the close frame is written: at
// once if the peer already closed its side, else after shutting down ours
// and waiting (bounded by closeLinger) for its EOF.
func (c *conn) finishCloseLocked() {
	if c.state != stateClosing || c.out != nil {
		return
	}
	if c.closeIn {
		c.closeNowLocked()
		return
	}
	if !c.shutWr {
		c.shutWr = true
		_ = unix.Shutdown(c.desc.Fd(), unix.SHUT_WR)
	}
}

// closeNowLocked unregisters and closes the fd. Worker only.
func (c *conn) closeNowLocked() {
	if c.state == stateClosed {
		return
	}
	if c.state == stateHandshake {
		c.srv.metrics.HandshakesActive.Add(-1)
	}
	c.state = stateClosed
	c.srv.limits.release(c)
	if c.out != nil {
		putOutQueue(c.out)
		c.out = nil
	}
	c.releaseInbound()
	c.srv.forget(c)
	if err := c.desc.Close(); err != nil {
		c.srv.log.Debug("close connection", "err", err)
	}
}

// onRequests handles what other goroutines asked for.
func (c *conn) onRequests() {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := c.requests
	c.requests = 0
	switch {
	case req&requestKill != 0:
		c.closeNowLocked()
	case req&requestDrain != 0:
		if c.state == stateHandshake {
			// No request head yet (or its connect hook still runs): the
			// drain ends before it could be served. Say so, like a request
			// that arrives during the drain (handshakeWith).
			c.srv.metrics.RefusedDraining.Add(1)
			c.srv.metrics.HandshakesActive.Add(-1)
			c.queueLocked(busyResponse)
			c.state = stateClosing
			c.flushLocked(true)
			c.desc.SetTimer(c.srv.at(c.srv.now() + int64(closeLinger)))
			return
		}
		c.startCloseLocked(wsframe.CloseGoingAway, "server shutting down", false)
		c.flushLocked(true)
	}
}

// onTimer enforces the handshake deadline, the heartbeat and the close
// linger. Each state keeps exactly one timer scheduled.
func (c *conn) onTimer(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateHandshake:
		c.srv.metrics.HandshakeTimeouts.Add(1)
		c.closeNowLocked()
	case stateClosing:
		c.closeNowLocked()
	case stateOpen:
		c.heartbeatLocked(now)
	}
}

// heartbeatLocked pings a connection that has been silent for PingInterval
// and closes it if nothing at all arrives within PongTimeout of the ping.
func (c *conn) heartbeatLocked(now int64) {
	cfg := c.srv.cfg
	expiry, open := c.checkExpiryLocked(c.srv.at(now))
	if !open {
		return
	}
	// Whatever timer the heartbeat sets, come back by the expiry check.
	defer func() {
		if !expiry.IsZero() && c.state == stateOpen && c.desc.TimerAfter(expiry) {
			c.desc.SetTimer(expiry)
		}
	}()
	if c.pingSentAt != 0 {
		if c.lastRead < c.pingSentAt {
			if now-c.pingSentAt >= int64(cfg.PongTimeout) {
				c.srv.metrics.PongTimeouts.Add(1)
				c.closeNowLocked()
				return
			}
			c.desc.SetTimer(c.srv.at(c.pingSentAt + int64(cfg.PongTimeout)))
			return
		}
		c.pingSentAt = 0
	}
	if now-c.lastRead < int64(cfg.PingInterval) {
		c.desc.SetTimer(c.srv.at(c.lastRead + int64(cfg.PingInterval)))
		return
	}
	c.queueLocked(pingFrame)
	c.flushLocked(true)
	c.pingSentAt = now
	c.desc.SetTimer(c.srv.at(now + int64(cfg.PongTimeout)))
}

// pingFrame is shared by every connection (frames are never modified).
var pingFrame = wsframe.Frame(wsframe.OpPing, nil)
