package gateway

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/wsframe"
	"github.com/wsgate/wsgate/netpoll"
)

// The transport's read side: the socket's input, the HTTP upgrade (and
// the connect hook it may wait for), the frame decoder and its sink.

// inbound is a connection's partial input: a handshake that has not fully
// arrived, or a frame decoder with leftover bytes. Pooled. partialSince is
// when the current partial input began (server clock, 0: none), for the
// message deadline; held is what it holds, as counted in the server's
// budget.
type inbound struct {
	dec          wsframe.Decoder
	leftover     []byte // ≤ wsframe.MaxLeftover bytes, or a partial handshake
	partialSince int64
	held         int32
}

var inboundPool = sync.Pool{New: func() any { return new(inbound) }}

// onReadable reads what the socket has (bounded per dispatch) and feeds it
// to the handshake parser or the frame decoder; a closing connection's
// input is discarded.
func (c *conn) onReadable(w *netpoll.Worker, now int64, ev netpoll.Event) {
	for range maxReadsPerEvent {
		if c.stateIs(stateClosing) {
			c.discard(ev)
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
			c.peerTimedOutLocked(err)
			c.closeNowLocked()
			c.mu.Unlock()
			return
		}
		if c.pingDelta != 0 {
			c.pingAnsweredAt(now)
		}
		c.lastRead, c.pingDelta = now, 0
		c.consume(buf[:off+n], now)
		if c.stateIs(stateClosing) {
			continue // discard whatever else the peer sent
		}
		if c.stateIs(stateClosed) || netpoll.Drained(off+n, len(buf), ev) {
			return // closed, or the socket is drained (saves a read returning EAGAIN)
		}
	}
	c.desc.ReadLater(ev) // edge-triggered: what is left would not be reported
}

// discard reads and drops what a closing connection's peer still sends,
// without copying it (MSG_TRUNC). Closing a socket whose input was not all
// read makes the kernel answer with a RST instead of a FIN, and a RST can
// destroy our close frame (or HTTP error) in the client's buffers before
// it reads it: the client would see 1006 instead of our code. So once the
// close frame is out we shut our side down (finishCloseLocked) and drain
// until the client closes, bounded by closeLinger and by discardLimit
// bytes; past that bound the client is an abuser and is closed at once.
func (c *conn) discard(ev netpoll.Event) {
	limit := c.srv.discardLimit
	c.mu.Lock()
	ext := c.extLocked() // the counter outlives this dispatch
	c.mu.Unlock()
	for range maxReadsPerEvent {
		n, err := netpoll.Discard(c.desc.Fd(), limit-ext.discarded+1)
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 || err != nil { // EOF: the peer has closed its side too
			c.mu.Lock()
			c.closeNowLocked()
			c.mu.Unlock()
			return
		}
		ext.discarded = min(ext.discarded+n, limit+1)
		if ext.discarded > limit {
			c.srv.events.forcedClose(c.desc.Fd(), c, closedDiscardLimit, "kept sending after the close frame", c.clientID())
			c.mu.Lock()
			c.closeNowLocked()
			c.mu.Unlock()
			return
		}
	}
	c.desc.ReadLater(ev)
}

// consume processes a contiguous input chunk (leftover + new bytes).
func (c *conn) consume(data []byte, now int64) {
	c.mu.Lock()
	st := c.state
	hookWait := c.ext != nil && c.ext.hookWait
	c.mu.Unlock()
	switch {
	case st == stateHandshake && hookWait:
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
	if end < 0 || end+4 > c.srv.cfg.MaxHandshakeBytes {
		if end >= 0 || len(data) > c.srv.cfg.MaxHandshakeBytes {
			c.srv.metrics.HandshakesFailed.Add(1)
			c.rejectHandshake(431, refusedTooLarge, "", []byte(httpError(431, "request header too large")))
		} else if !c.setLeftover(data) {
			c.refusePartial()
		}
		return
	}
	if c.srv.draining() {
		// Shutting down: a balancer retries a 503 on another instance.
		c.srv.metrics.RefusedDraining.Add(1)
		c.rejectHandshake(503, refusedDraining, "", busyResponse)
		return
	}
	res := c.srv.upgrader.upgradeWith(data[:end+4], hook, c)
	if res.deferred != nil {
		if !c.startHook(res.deferred, data) {
			c.srv.metrics.HandshakesBusy.Add(1)
			c.rejectHandshake(503, refusedHookBusy, "", busyResponse)
		}
		return
	}
	rest := data[end+4:]
	c.setLeftover(nil)
	switch {
	case !res.ok && res.static: // a demo page, not a refusal
		c.rejectHandshake(0, "", "", res.response)
	case !res.ok && res.label == refusedPerIP: // behind a trusted proxy (admitUpgrade)
		c.srv.metrics.ConnsRefused.Add(1)
		c.rejectHandshake(res.status, res.label, "", res.response)
	case !res.ok:
		c.srv.metrics.HandshakesFailed.Add(1)
		c.rejectHandshake(res.status, res.label, res.reason, res.response)
	case res.endpoint == EndpointWS && !c.srv.limits.admitUser(res.identity.UserID):
		c.srv.metrics.HandshakesFailed.Add(1)
		c.rejectHandshake(429, refusedPerUser, "", []byte(httpError(429, "too many connections for this user")))
	default:
		c.open(&res, rest)
	}
}

// admitUpgrade implements upgradeAdmitter: the server's limits decide on
// the client address the request names.
func (c *conn) admitUpgrade(fwd *forwardedFor) bool { return c.srv.limits.admitUpgrade(c, fwd) }

// open completes an accepted upgrade: the 101 goes out, a /ws connection
// gets its session and its place in the server's index, and the bytes
// that followed the request are decoded.
func (c *conn) open(res *upgradeResult, rest []byte) {
	c.srv.metrics.HandshakesActive.Add(-1)
	c.srv.metrics.ConnsUpgraded.Add(1)
	c.desc.SetDeferrable(false)
	var sess *session
	if res.endpoint == EndpointWS {
		enc, _ := codec.EncodingFor(res.protocol) // the upgrader accepted only codec's names
		sess = newSession(c, c.srv, enc, c.srv.clientSeq.Add(1), c.desc.Fd(), res.identity)
		sess.window = res.window
	}
	c.mu.Lock()
	c.state, c.sess = stateOpen, sess
	c.requests |= uint8(res.window) << windowShift
	c.queueLocked(res.response)
	c.flushLocked(true)
	c.mu.Unlock()
	if sess != nil {
		c.srv.index.addUser(c, sess.userID())
	}
	c.firstTimer(sess, res.identity.ExpiresAt)
	if len(rest) > 0 {
		c.frames(rest, c.lastRead)
	}
}

// firstTimer replaces the handshake deadline with the first ping, or the
// token's expiry if that comes first. With HeartbeatTCP there is no ping
// to plan, and a connection without an expiry needs no timer at all.
func (c *conn) firstTimer(sess *session, expiry time.Time) {
	var next time.Time
	if c.srv.cfg.Heartbeat != HeartbeatTCP {
		next = c.srv.at(c.lastRead + int64(c.srv.cfg.PingInterval))
	}
	if sess != nil && !expiry.IsZero() && (next.IsZero() || expiry.Before(next)) {
		next = expiry
	}
	if next.IsZero() {
		c.desc.StopTimer()
		return
	}
	c.desc.SetTimer(next)
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
		c.srv.events.refusedHandshake(c.desc.Fd(), c, status, label, reason)
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

// startHook runs a deferred connect hook on its own goroutine (bounded by
// the server's semaphore) and hands the outcome back to the connection's
// worker. The request bytes wait in c.in meanwhile.
func (c *conn) startHook(d *deferredHook, data []byte) bool {
	select {
	case c.srv.hookSem <- struct{}{}:
	default:
		return false
	}
	c.setLeftover(data)
	c.mu.Lock()
	c.extLocked().hookWait = true
	c.mu.Unlock()
	timeout := c.srv.cfg.HandshakeTimeout
	c.srv.hookWG.Add(1)
	go func() {
		defer c.srv.hookWG.Done()
		defer func() { <-c.srv.hookSem }()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		id, err := d.Call(ctx)
		cancel()
		c.mu.Lock()
		c.extLocked().hookDone = &hookOutcome{identity: id, err: err}
		c.mu.Unlock()
		c.desc.Notify(netpollNotify)
	}()
	return true
}

// finishHook resumes a handshake whose connect hook answered (worker).
func (c *conn) finishHook() {
	c.mu.Lock()
	var done *hookOutcome
	waiting := c.ext != nil && c.ext.hookWait
	if waiting && c.ext.hookDone != nil {
		done, c.ext.hookDone, c.ext.hookWait = c.ext.hookDone, nil, false
		c.dropExtLocked()
	}
	open := c.state == stateHandshake
	c.mu.Unlock()
	if done == nil || !open {
		return
	}
	data := append([]byte(nil), c.in.leftover...)
	c.setLeftover(nil)
	c.handshakeWith(data, done)
}

// frames runs the frame decoder over data and keeps what it left over.
// Partial input is held against the server's budget and must complete
// within MessageTimeout.
func (c *conn) frames(data []byte, now int64) {
	in := c.inbound()
	in.dec.Inflate = c.inflater() // a pooled decoder may carry another's
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
// partial (nothing partial: c.in is nil, and so is the deadline): the
// timer fires by then unless it is due earlier anyway.
func (c *conn) armMessageDeadline(now int64) {
	if c.in == nil || c.in.partialSince != 0 {
		return
	}
	c.in.partialSince = now
	c.mu.Lock()
	c.keepMessageDeadlineLocked()
	c.mu.Unlock()
}

// keepMessageDeadlineLocked makes sure the timer fires by the message
// deadline while input is partial (the heartbeat may have set it later).
func (c *conn) keepMessageDeadlineLocked() {
	if c.state != stateOpen || c.in == nil || c.in.partialSince == 0 {
		return
	}
	c.desc.SetTimerBefore(c.srv.at(c.in.partialSince + int64(c.srv.cfg.MessageTimeout)))
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

// window is what c negotiated for permessage-deflate (NoWindow: nothing;
// its home: compression.go).
func (c *conn) window() deflate.Window {
	if c.sess != nil { // set once under mu at the upgrade, before any frame
		return c.sess.window
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return deflate.Window(c.requests >> windowShift)
}

// inflater returns the Inflate function for c's decoder: the server's when
// c negotiated compression, nil (RSV1 is an error) otherwise. Worker only.
func (c *conn) inflater() func(dst, compressed []byte, limit int) ([]byte, error) {
	if !c.window().Negotiated() {
		return nil
	}
	return c.srv.inflateFn
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
	grew := held - in.held
	in.held = held
	total := c.srv.metrics.PartialBytes.Add(int64(grew))
	return grew <= 0 || total <= int64(c.srv.cfg.MaxPartialBytes)
}

func (c *conn) releaseInbound() {
	if c.in == nil {
		return
	}
	c.srv.metrics.PartialBytes.Add(-int64(c.in.held))
	c.in.held, c.in.partialSince = 0, 0
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
	if c.in != nil {
		c.in.partialSince = 0 // the deadline is per message: what follows restarts it (frames)
	}
	if c.sess == nil { // the echo endpoint
		c.send(dataFrame(op, payload, c.window(), c.srv.cfg.CompressionMinBytes))
		return nil
	}
	return c.sess.onMessage(op, payload)
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
