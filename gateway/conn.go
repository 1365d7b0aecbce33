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

// Close codes wsgate sends besides the RFC ones (see DESIGN.md and the
// close-code table in README.md).
const (
	// CloseSlowConsumer: the connection's backlog passed MaxQueueBytes.
	CloseSlowConsumer uint16 = 4008
	// CloseMessageTimeout: a message (or frame header) did not arrive in
	// full within MessageTimeout of its first byte.
	CloseMessageTimeout uint16 = 4009
	// CloseServerBusy: the server-wide budget for partial input
	// (MaxPartialBytes) is spent; reconnect with backoff.
	CloseServerBusy uint16 = 4013
)

// readBufferBytes is the size of each worker's read buffer.
const readBufferBytes = 64 << 10

// closeLinger bounds how long a closing connection waits for its close frame
// to flush and for the peer to close its side.
const closeLinger = 2 * time.Second

// minDiscard is the least input a closing connection reads and drops
// before it gives up on a clean close (see discard); the bound is at least
// twice the message limit, so a client caught in the middle of sending a
// message over the limit can finish writing and still read our close code.
const minDiscard = 4 << 20

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
	// Worker-only partial-input bookkeeping: partialSince is when the
	// current partial input began (server clock, 0: none), for the message
	// deadline; held is what it holds, as counted in the server's budget;
	// discarded is what a closing connection has read and dropped.
	partialSince int64
	held         int32
	discarded    int32

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
// to the handshake parser or the frame decoder; a closing connection's
// input is discarded.
func (c *conn) onReadable(w *netpoll.Worker, now int64) {
	for range maxReadsPerEvent {
		if c.stateIs(stateClosing) {
			c.discard()
			return
		}
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
		c.consume(buf[:off+n], now)
		if c.stateIs(stateClosing) {
			continue // discard whatever else the peer sent
		}
		if c.stateIs(stateClosed) || off+n < len(buf) {
			return // closed, or the socket is drained (saves a read returning EAGAIN)
		}
	}
}

// discard reads and drops what a closing connection's peer still sends,
// without copying it (MSG_TRUNC). Closing a socket whose input was not all
// read makes the kernel answer with a RST instead of a FIN, and a RST can
// destroy our close frame (or HTTP error) in the client's buffers before
// it reads it: the client would see 1006 instead of our code. So once the
// close frame is out we shut our side down (finishCloseLocked) and drain
// until the client closes, bounded by closeLinger and by discardLimit
// bytes; past that bound the client is an abuser and is closed at once.
func (c *conn) discard() {
	limit := c.srv.discardLimit
	for range maxReadsPerEvent {
		n, err := netpoll.Discard(c.desc.Fd(), limit-int(c.discarded)+1)
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 || err != nil { // EOF: the peer has closed its side too
			c.mu.Lock()
			c.closeNowLocked()
			c.mu.Unlock()
			return
		}
		c.discarded = int32(min(int(c.discarded)+n, limit+1))
		if int(c.discarded) > limit {
			c.srv.events.forcedClose(c.desc.Fd(), closedDiscardLimit, "kept sending after the close frame", c.clientID())
			c.mu.Lock()
			c.closeNowLocked()
			c.mu.Unlock()
			return
		}
	}
}

func (c *conn) stateIs(s connState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == s
}

// consume processes a contiguous input chunk (leftover + new bytes).
func (c *conn) consume(data []byte, now int64) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	switch {
	case st == stateHandshake && c.hookWait:
		// More bytes while the connect hook runs: keep them, bounded by
		// what the next read can still append to in the read buffer.
		if len(data) > min(c.srv.cfg.MaxHandshakeBytes+c.srv.cfg.MaxMessageBytes, readBufferBytes-1) {
			c.srv.metrics.HandshakesFailed.Add(1)
			c.rejectHandshake(400, refusedEarlyData, "too much data before the upgrade",
				[]byte(httpError(400, "too much data before the upgrade")))
			return
		}
		if !c.setLeftover(data) {
			c.refusePartial()
		}
	case st == stateHandshake:
		c.handshake(data)
	case st == stateOpen:
		c.frames(data, now)
	default:
		c.setLeftover(nil) // closing: input is no longer interesting
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
			c.rejectHandshake(431, refusedTooLarge, "", []byte(httpError(431, "request header too large")))
			return
		}
		if !c.setLeftover(data) {
			c.refusePartial()
		}
		return
	}
	if end+4 > c.srv.cfg.MaxHandshakeBytes {
		c.srv.metrics.HandshakesFailed.Add(1)
		c.rejectHandshake(431, refusedTooLarge, "", []byte(httpError(431, "request header too large")))
		return
	}
	if c.srv.draining() {
		// Shutting down: a balancer retries a 503 on another instance.
		c.srv.metrics.RefusedDraining.Add(1)
		c.rejectHandshake(503, refusedDraining, "", busyResponse)
		return
	}
	res := c.srv.upgrader.upgradeWith(data[:end+4], hook)
	if res.deferred != nil {
		if !c.startHook(res.deferred, data) {
			c.srv.metrics.HandshakesBusy.Add(1)
			c.rejectHandshake(503, refusedHookBusy, "", busyResponse)
		}
		return
	}
	rest := data[end+4:]
	c.setLeftover(nil)
	if !res.ok {
		if res.static { // a demo page, not a refusal
			c.rejectHandshake(0, "", "", res.response)
			return
		}
		c.srv.metrics.HandshakesFailed.Add(1)
		c.rejectHandshake(res.status, res.label, res.reason, res.response)
		return
	}
	if res.endpoint == EndpointWS && !c.srv.limits.admitUser(res.identity.UserID) {
		c.srv.metrics.HandshakesFailed.Add(1)
		c.rejectHandshake(429, refusedPerUser, "", []byte(httpError(429, "too many connections for this user")))
		return
	}
	c.srv.metrics.HandshakesActive.Add(-1)
	c.srv.metrics.ConnsUpgraded.Add(1)
	c.desc.SetDeferrable(false)
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
		c.frames(rest, c.lastRead)
	}
}

// refusePartial answers a handshake whose partial request does not fit the
// server's budget for partial input.
func (c *conn) refusePartial() {
	c.srv.metrics.PartialBudgetRefusals.Add(1)
	c.rejectHandshake(503, refusedPartialBytes, "", busyResponse)
}

// rejectHandshake sends an HTTP response (an error, or a static page) and
// closes once it is out. status, label and reason are for the logs (label
// "": not a refusal).
func (c *conn) rejectHandshake(status int, label, reason string, resp []byte) {
	if label != "" {
		c.srv.events.refusedHandshake(c.desc.Fd(), status, label, reason)
	}
	c.setLeftover(nil)
	c.srv.metrics.HandshakesActive.Add(-1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queueLocked(resp)
	// Shut down our side once the response is out and wait (bounded) for
	// the client's EOF: closing with unread input would send an RST that
	// can destroy the response before the client reads it.
	c.state = stateClosing
	c.desc.SetDeferrable(true)
	c.flushLocked(true)
	c.desc.SetTimer(c.srv.at(c.srv.now() + int64(closeLinger)))
}

// frames runs the frame decoder over data and keeps what it left over.
// Partial input is held against the server's budget and must complete
// within MessageTimeout.
func (c *conn) frames(data []byte, now int64) {
	in := c.inbound()
	n, err := in.dec.Decode(data, c)
	if err != nil {
		c.setLeftover(nil)
		c.protocolError(err)
		return
	}
	if !c.setLeftover(data[n:]) {
		c.srv.metrics.PartialBudgetCloses.Add(1)
		c.protocolError(&wsframe.Error{Code: CloseServerBusy, Reason: "server busy: too much partial input"})
		return
	}
	c.armMessageDeadline(now)
	c.mu.Lock()
	c.flushLocked(true)
	c.mu.Unlock()
}

// armMessageDeadline starts the message deadline when input became
// partial (and forgets it when nothing is partial any more): the timer
// fires by then unless it is due earlier anyway.
func (c *conn) armMessageDeadline(now int64) {
	if c.in == nil {
		c.partialSince = 0
		return
	}
	if c.partialSince != 0 {
		return
	}
	c.partialSince = now
	c.mu.Lock()
	c.keepMessageDeadlineLocked()
	c.mu.Unlock()
}

// keepMessageDeadlineLocked makes sure the timer fires by the message
// deadline while input is partial (the heartbeat may have set it later).
func (c *conn) keepMessageDeadlineLocked() {
	if c.state != stateOpen || c.partialSince == 0 {
		return
	}
	if at := c.srv.at(c.partialSince + int64(c.srv.cfg.MessageTimeout)); c.desc.TimerAfter(at) {
		c.desc.SetTimer(at)
	}
}

// protocolError closes the connection for something the client did: a
// protocol violation, a limit it crossed.
func (c *conn) protocolError(err error) {
	var ferr *wsframe.Error
	if !errors.As(err, &ferr) {
		ferr = &wsframe.Error{Code: wsframe.CloseInternalError, Reason: "internal error"}
	}
	switch ferr.Code {
	case CloseRateLimited, CloseServerBusy, CloseMessageTimeout: // counted under their own names
	default:
		c.srv.metrics.ProtocolErrors.Add(1)
	}
	c.mu.Lock()
	c.startCloseLocked(ferr.Code, ferr.Reason, false)
	c.flushLocked(true) // the close frame first, then the drain (see discard)
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
// state when nothing partial remains. It accounts what c's partial input
// now holds (leftover and the decoder's message buffer) in the server-wide
// total, and reports false when that total is over MaxPartialBytes and
// c's share grew: the caller refuses c.
func (c *conn) setLeftover(b []byte) bool {
	if len(b) == 0 && (c.in == nil || c.in.dec.Idle()) {
		c.releaseInbound()
		return true
	}
	in := c.inbound()
	in.leftover = append(in.leftover[:0], b...)
	held := int32(len(in.leftover) + in.dec.Buffered())
	grew := held - c.held
	c.held = held
	total := c.srv.metrics.PartialBytes.Add(int64(grew))
	return grew <= 0 || total <= int64(c.srv.cfg.MaxPartialBytes)
}

func (c *conn) releaseInbound() {
	c.partialSince = 0
	if c.in == nil {
		return
	}
	c.srv.metrics.PartialBytes.Add(-int64(c.held))
	c.held = 0
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

// queueLocked appends a frame, enforcing MaxQueueBytes on the backlog:
// the bytes already queued that the socket has not taken. A frame on an
// empty backlog is always accepted, whatever its size: one large message
// to a client that reads is not a slow consumer. (The queue is non-empty
// only while the socket refuses bytes: every path that queues flushes.)
func (c *conn) queueLocked(frame []byte) {
	if c.state >= stateClosing {
		return // the close frame is the last one
	}
	if c.out == nil {
		c.out = getOutQueue()
	}
	if backlog := c.out.Len(); backlog > 0 && backlog+len(frame) > c.srv.cfg.MaxQueueBytes {
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
// consumer: they would never drain). A close the server starts for a
// reason of its own (not an answer to the peer's close, not a drain) is
// logged and counted as a forced close.
func (c *conn) startCloseLocked(code uint16, reason string, dropQueued bool) {
	if c.state >= stateClosing {
		return
	}
	if !c.closeIn && code != 0 && code != wsframe.CloseNormal && code != wsframe.CloseGoingAway {
		c.srv.events.forcedClose(c.desc.Fd(), closeLabel(code), reason, c.clientID())
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
	c.desc.SetDeferrable(true) // nobody waits on a closing connection
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
			c.srv.events.refusedHandshake(c.desc.Fd(), 503, refusedDraining, "")
			c.queueLocked(busyResponse)
			c.state = stateClosing
			c.desc.SetDeferrable(true)
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
		c.srv.events.refusedHandshake(c.desc.Fd(), 0, refusedTimeout, "")
		c.closeNowLocked()
	case stateClosing:
		c.closeNowLocked()
	case stateOpen:
		if c.partialSince != 0 && now-c.partialSince >= int64(c.srv.cfg.MessageTimeout) {
			c.srv.metrics.MessageTimeouts.Add(1)
			c.startCloseLocked(CloseMessageTimeout, "message timeout", false)
			c.flushLocked(true)
			return
		}
		c.heartbeatLocked(now)
		c.keepMessageDeadlineLocked()
	}
}

// clientID names the connection's session in logs ("" before the upgrade
// and on the echo endpoint).
func (c *conn) clientID() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.id
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
				c.srv.events.forcedClose(c.desc.Fd(), closedPongTimeout, "", c.clientID())
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
