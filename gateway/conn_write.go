package gateway

import (
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
	"github.com/wsgate/wsgate/netpoll"
)

// The transport's write side: the outbound queue, flushing, and the close
// state machine; then the transport interface the session uses.

// send queues one frame without flushing; the worker flushes after the
// read batch, so replies to pipelined requests share one write.
func (c *conn) send(frame []byte) {
	c.mu.Lock()
	c.queueLocked(frame)
	c.mu.Unlock()
}

// queueLocked appends a frame, enforcing MaxQueueBytes on the backlog of a
// socket that refuses bytes: once the last flush left some of the queue
// unwritten, the queue may not grow past the limit. While the socket took
// everything it was offered, frames are accepted whatever their number or
// size: the hub queues a round (or a repaired channel's history and held
// publications) for each subscriber before it flushes, and a client that
// reads is not a slow consumer for that.
func (c *conn) queueLocked(frame []byte) {
	one := [1][]byte{frame}
	c.queueAllLocked(one[:])
}

// queueAllLocked is queueLocked for a run of frames, with one append and
// one count for the run (a fan-out run reaches every subscriber at once,
// so per-frame work here is multiplied by the audience).
func (c *conn) queueAllLocked(frames [][]byte) {
	if c.state >= stateClosing {
		return
	}
	if c.out == nil {
		c.out = getOutQueue()
	}
	backlog, k := c.out.Len(), len(frames)
	if c.out.Refused() > 0 {
		for k = 0; k < len(frames); k++ {
			if backlog+len(frames[k]) > c.srv.cfg.MaxQueueBytes {
				break
			}
			backlog += len(frames[k])
		}
	}
	c.out.PushAll(frames[:k])
	c.srv.metrics.FramesOut.Add(int64(k))
	if k < len(frames) {
		c.slowConsumerLocked()
	}
}

// slowConsumerLocked closes a connection whose backlog passed
// MaxQueueBytes; what it had queued is dropped.
func (c *conn) slowConsumerLocked() {
	c.srv.metrics.SlowConsumers.Add(1)
	c.startCloseLocked(CloseSlowConsumer, "slow consumer", true)
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
		c.srv.events.forcedClose(c.desc.Fd(), c, closeLabel(code), reason, c.clientID())
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
// write per MaxIovecs frames. onWorker says whether the caller owns the
// dispatch; otherwise write interest is added with ArmIfIdle.
func (c *conn) flushLocked(onWorker bool) {
	if c.state == stateClosed || c.out == nil {
		return
	}
	writes, err := c.out.Flush(c.desc.Fd())
	c.flushedLocked(writes, err, onWorker)
}

// flushedLocked is the end of a flush, however it was written (here or in
// a batch, sendbatch.go): writes calls wrote something, err says the
// socket is broken.
func (c *conn) flushedLocked(writes int, err error, onWorker bool) {
	c.srv.metrics.Writevs.Add(int64(writes))
	if c.out != nil {
		c.out.Offered()
	}
	if err != nil { // peer reset or timed out: nothing more can be sent
		c.peerTimedOutLocked(err)
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
	c.ext = nil // pending work dies with the connection
	c.srv.forget(c)
	if err := c.desc.Close(); err != nil {
		c.srv.log.Debug("close connection", "err", err)
	}
}

// The transport interface (session.go) as conn implements it.

// write queues a frame and flushes, from any goroutine (broker callbacks
// run on this connection's worker or on another goroutine): it flushes
// whenever it made the queue non-empty, since nobody else may be about to.
// (Trying to tell "still on the worker, which flushes later" from "after
// the worker's last flush" is a race that loses replies.)
func (c *conn) write(frame []byte) {
	c.mu.Lock()
	c.queueLocked(frame)
	c.flushLocked(false) // even if others queued first: they may be waiting on us
	c.mu.Unlock()
}

// writeAll queues frames in one go and flushes, from any goroutine. With
// force the queue limit does not apply to them (a resume's replay, bounded
// by the channel's history instead).
func (c *conn) writeAll(frames [][]byte, force bool) {
	c.mu.Lock()
	for _, f := range frames {
		if force {
			c.pushLocked(f)
		} else {
			c.queueLocked(f)
		}
	}
	c.flushLocked(false)
	c.mu.Unlock()
}

// enqueue queues fan-out frames under one lock without flushing, from any
// goroutine, and reports whether the caller must flush (the queue was
// empty, so nobody else will).
func (c *conn) enqueue(frames [][]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	wasEmpty := c.out == nil
	c.queueAllLocked(frames)
	return wasEmpty && c.out != nil
}

// flush writes what the socket takes now, from any goroutine.
func (c *conn) flush() {
	c.mu.Lock()
	c.flushLocked(false)
	c.mu.Unlock()
}

// overLimit reports whether extra bytes held for the connection on top
// of its backlog pass MaxQueueBytes; if so the connection is closed as a
// slow consumer (the caller then flushes). Any goroutine.
func (c *conn) overLimit(extra int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	backlog := 0
	if c.out != nil {
		backlog = c.out.Len()
	}
	if backlog+extra <= c.srv.cfg.MaxQueueBytes {
		return false
	}
	c.slowConsumerLocked()
	return true
}

// close starts a close with code (worker only) and flushes the close frame.
func (c *conn) close(code uint16, reason string) {
	c.mu.Lock()
	c.startCloseLocked(code, reason, false)
	c.flushLocked(true)
	c.mu.Unlock()
}

// replan runs the timer now, so it is planned again (heartbeat, expiry).
func (c *conn) replan() { c.desc.SetTimer(c.srv.at(c.srv.now())) }
