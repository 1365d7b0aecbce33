package gateway

import (
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
	"github.com/wsgate/wsgate/netpoll"
)

// This file and its neighbours conn_read.go and conn_write.go are the
// transport: one socket's bytes, its frames, its outbound queue, its close
// state machine and its heartbeat. The transport knows nothing about
// channels; the client protocol on top of it is the session (session.go),
// which sees the transport only through the transport interface.

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

// conn is one client connection's transport. It is pointer-light and has
// no buffers while idle: in is allocated only while a handshake or frame is
// partial, out only while frames wait for the socket, ext only while other
// goroutines have work queued for the worker or a connect hook runs.
//
// Concurrency: netpoll runs HandleEvent for one conn on one worker at a
// time; that worker alone reads the socket, touches in, and closes the fd.
// Other goroutines (fan-out writers, broker callbacks, the server API,
// shutdown) only queue frames and set requests under mu, then Notify. mu
// guards state, out, requests and ext. The lock order is in doc.go.
type conn struct {
	desc netpoll.Desc
	srv  *Server
	// sess is the client protocol on /ws (nil before the upgrade and on
	// /echo). It is set once, under mu, when the upgrade completes.
	sess *session

	mu       sync.Mutex
	state    connState
	closeIn  bool  // peer's close frame received
	shutWr   bool  // our side shut down after the close frame was flushed
	requests uint8 // requestDrain | requestKill, and the deflate window (windowMask)
	// pingDelta (worker-only) says a ping is out and nothing was read since
	// (0: none): it was sent pingDelta ms after lastRead. A read clears it.
	// (Milliseconds from lastRead instead of a second clock: it fits in the
	// padding after the flags, which keeps an idle conn at 128 bytes.)
	pingDelta int32
	out       *netpoll.WriteQueue
	in        *inbound // worker-only
	ext       *connExt // guarded by mu; nil while nothing is pending

	// lastRead is when the last read returned bytes (worker-only),
	// nanoseconds since server start.
	lastRead int64
}

// connExt is the rarely used part of a connection: work other goroutines
// queued for its worker, a connect hook's outcome, and what a closing
// connection has read and dropped (see discard). Allocated on demand and
// dropped when empty, so an idle connection holds none.
type connExt struct {
	pending   []func()     // work for the worker (server API), see runOnWorker
	hookWait  bool         // a connect hook runs for us (set by the worker)
	hookDone  *hookOutcome // a connect hook's outcome, set by its goroutine
	discarded int          // input dropped while closing (worker)
}

// extLocked returns c.ext, allocating it.
func (c *conn) extLocked() *connExt {
	if c.ext == nil {
		c.ext = &connExt{}
	}
	return c.ext
}

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
		c.onReadable(w, now, ev)
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
	if closed && c.sess != nil {
		// Without c.mu: the hub may take a connection's lock under its
		// own (repairs, subscribe answers), so never the reverse.
		c.sess.closed()
	}
}

func (c *conn) stateIs(s connState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == s
}

// clientID names the connection's session in logs ("" before the upgrade
// and on the echo endpoint).
func (c *conn) clientID() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.id()
}

// request asks a connection's worker to act (drain, kill).
func (c *conn) request(r uint8) {
	c.mu.Lock()
	c.requests |= r
	c.mu.Unlock()
	c.desc.Notify(netpoll.EventNotify)
}

// runOnWorker queues fn to run on the connection's worker, where session
// state may be touched. fn does not run if the connection closes first.
func (c *conn) runOnWorker(fn func()) {
	c.mu.Lock()
	ext := c.extLocked()
	ext.pending = append(ext.pending, fn)
	c.mu.Unlock()
	c.desc.Notify(netpollNotify)
}

// runPending runs what other goroutines queued (worker only).
func (c *conn) runPending() {
	c.mu.Lock()
	var fns []func()
	if c.ext != nil {
		fns, c.ext.pending = c.ext.pending, nil
		c.dropExtLocked()
	}
	c.mu.Unlock()
	for _, fn := range fns {
		if c.stateIs(stateOpen) {
			fn()
		}
	}
}

// dropExtLocked releases ext once nothing is pending in it.
func (c *conn) dropExtLocked() {
	if c.ext != nil && c.ext.pending == nil && !c.ext.hookWait && c.ext.hookDone == nil && c.ext.discarded == 0 {
		c.ext = nil
	}
}

// onRequests handles what other goroutines asked for.
func (c *conn) onRequests() {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := c.requests
	c.requests &= windowMask // not a request (compression.go)
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
			c.srv.events.refusedHandshake(c.desc.Fd(), c, 503, refusedDraining, "")
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

// onTimer enforces the handshake deadline, the message deadline, the
// session's token expiry, the heartbeat and the close linger. Each state
// keeps exactly one timer scheduled.
func (c *conn) onTimer(now int64) {
	c.mu.Lock()
	st := c.state
	switch st {
	case stateHandshake:
		c.srv.metrics.HandshakeTimeouts.Add(1)
		c.srv.events.refusedHandshake(c.desc.Fd(), c, 0, refusedTimeout, "")
		c.closeNowLocked()
	case stateClosing:
		c.closeNowLocked()
	case stateOpen:
		if c.in != nil && c.in.partialSince != 0 && now-c.in.partialSince >= int64(c.srv.cfg.MessageTimeout) {
			c.srv.metrics.MessageTimeouts.Add(1)
			c.startCloseLocked(CloseMessageTimeout, "message timeout", false)
			c.flushLocked(true)
			st = stateClosing
		}
	}
	c.mu.Unlock()
	if st != stateOpen {
		return
	}
	// The session's check runs without c.mu: it queues through the
	// transport interface, which takes it.
	var expiry time.Time
	if c.sess != nil {
		var open bool
		if expiry, open = c.sess.checkExpiry(c.srv.at(now)); !open {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return
	}
	c.heartbeatLocked(now)
	c.keepMessageDeadlineLocked()
	// Whatever timer the heartbeat set, come back by the expiry check.
	if !expiry.IsZero() && c.state == stateOpen {
		c.desc.SetTimerBefore(expiry)
	}
}

// heartbeatLocked pings a connection that has been silent for PingInterval
// and closes it if nothing at all arrives within PongTimeout of the ping.
// It first flushes what the session's expiry check queued. With
// HeartbeatTCP the kernel does this (keepalive.go) and no timer is set.
func (c *conn) heartbeatLocked(now int64) {
	cfg := c.srv.cfg
	c.flushLocked(true)
	if cfg.Heartbeat == HeartbeatTCP {
		return
	}
	if c.pingDelta != 0 { // nothing read since the ping
		sent := c.lastRead + int64(c.pingDelta)*int64(time.Millisecond)
		if now-sent >= int64(cfg.PongTimeout) {
			if c.answerWaitingLocked(now) {
				return
			}
			c.srv.metrics.PongTimeouts.Add(1)
			c.srv.events.forcedClose(c.desc.Fd(), c, closedPongTimeout, "", c.clientID())
			c.closeNowLocked()
			return
		}
		c.desc.SetTimer(c.srv.at(sent + int64(cfg.PongTimeout)))
		return
	}
	if now-c.lastRead < int64(cfg.PingInterval) {
		c.desc.SetTimer(c.srv.at(c.lastRead + int64(cfg.PingInterval)))
		return
	}
	c.queueLocked(pingFrame)
	c.flushLocked(true)
	// Rounded up, so the pong deadline is never early.
	c.pingDelta = int32(min((now-c.lastRead+int64(time.Millisecond)-1)/int64(time.Millisecond), math.MaxInt32))
	c.desc.SetTimer(c.srv.at(now + int64(cfg.PongTimeout)))
}

// pingAnsweredAt runs (on the worker) when input arrives while a ping is
// out. The timer then waits for the pong timeout; when that is longer than
// the ping interval the next ping falls due first, so the timer is brought
// forward to it. It is never pushed back: it may stand for an earlier
// deadline (the token's expiry), and with the usual pong timeout, shorter
// than the interval, the heartbeat simply re-plans when it fires.
func (c *conn) pingAnsweredAt(now int64) {
	cfg := c.srv.cfg
	if cfg.PongTimeout <= cfg.PingInterval {
		return
	}
	// Under c.mu: a close started meanwhile (a slow consumer, from another
	// goroutine) sets its own linger, which must not be brought forward.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateOpen {
		c.desc.SetTimerBefore(c.srv.at(now + int64(cfg.PingInterval)))
	}
}

// answerWaitingLocked reports whether the peer's bytes already wait in the
// socket although the pong timeout has passed: a busy gateway (a broadcast
// to every connection, say) has not yet run the read the kernel reported.
// The peer is alive, so the connection stays; the armed read consumes the
// bytes and the timer checks again after another PongTimeout.
func (c *conn) answerWaitingLocked(now int64) bool {
	n, err := netpoll.Unread(c.desc.Fd())
	if err != nil || n == 0 {
		return false
	}
	c.srv.metrics.PongsLate.Add(1)
	c.desc.SetTimer(c.srv.at(now + int64(c.srv.cfg.PongTimeout)))
	return true
}

// peerTimedOutLocked counts an open connection whose socket failed because
// the kernel gave up on the peer: ETIMEDOUT (keepalive probes unanswered
// under HeartbeatTCP, data or a zero window outlasting TCP_USER_TIMEOUT,
// tcp_retries2), or an ICMP verdict that the host or network is gone. The
// kernel reports it once; the caller closes the socket.
func (c *conn) peerTimedOutLocked(err error) {
	if c.state != stateOpen {
		return // already closing, and counted for why
	}
	if errors.Is(err, unix.ETIMEDOUT) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH) {
		c.srv.metrics.PeerTimeouts.Add(1)
		c.srv.events.forcedClose(c.desc.Fd(), c, closedPeerTimeout, err.Error(), c.clientID())
	}
}

// pingFrame is shared by every connection (frames are never modified).
var pingFrame = wsframe.Frame(wsframe.OpPing, nil)
