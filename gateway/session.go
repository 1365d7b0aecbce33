package gateway

import (
	"errors"
	"slices"
	"sync/atomic"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// session is the client protocol state of a /ws connection: its encoding,
// who it is and what it subscribed to. It is touched only by the
// connection's worker, except subs at close (after the worker is done).
type session struct {
	enc      codec.Encoding
	identity Identity
	subs     []string // channels, ≤ MaxChannelsPerConn
}

func newSession(protocol string, id Identity) *session {
	enc := codec.Msgpack
	if protocol == ProtocolJSON {
		enc = codec.JSON
	}
	return &session{enc: enc, identity: id}
}

// Encoding implements hub.Subscriber.
func (c *conn) Encoding() codec.Encoding { return c.sess.enc }

// Enqueue implements hub.Subscriber.
func (c *conn) Enqueue(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	wasEmpty := c.out == nil
	c.queueLocked(frame)
	return wasEmpty && c.out != nil
}

// Flush implements hub.Subscriber.
func (c *conn) Flush() {
	c.mu.Lock()
	c.flushLocked(false)
	c.mu.Unlock()
}

// onCommand runs one client command. The frame must match the negotiated
// encoding (binary for MessagePack, text for JSON); a frame that is not a
// command at all closes the connection with 1007, a bad command whose id
// could be read gets an error reply.
func (c *conn) onCommand(op wsframe.Opcode, payload []byte) error {
	s := c.sess
	if (s.enc == codec.JSON) != (op == wsframe.OpText) {
		return &wsframe.Error{Code: wsframe.CloseUnsupported, Reason: "wrong frame type for the subprotocol"}
	}
	var cmd codec.Command
	limits := codec.Limits{MaxChannelBytes: c.srv.cfg.MaxChannelBytes, MaxDataBytes: c.srv.cfg.MaxMessageBytes}
	if err := limits.DecodeCommand(s.enc, payload, &cmd); err != nil {
		var derr *codec.DecodeError
		if errors.As(err, &derr) && derr.IDKnown {
			c.reply(codec.AppendError(nil, s.enc, derr.ID, derr.Code, derr.Message()))
			return nil
		}
		return &wsframe.Error{Code: wsframe.CloseInvalidPayload, Reason: "undecodable command"}
	}
	switch cmd.Cmd {
	case codec.CmdPing:
		c.reply(codec.AppendReply(nil, s.enc, codec.Reply{ID: cmd.ID, Cmd: codec.CmdPing}))
	case codec.CmdSubscribe:
		c.subscribe(&cmd)
	case codec.CmdUnsubscribe:
		c.unsubscribe(&cmd)
	case codec.CmdPublish:
		c.publish(&cmd)
	default:
		c.replyError(cmd.ID, codec.CodeNotAvailable, "command not available")
	}
	return nil
}

func (c *conn) replyError(id uint32, code codec.ErrorCode, msg string) {
	c.reply(codec.AppendError(nil, c.sess.enc, id, code, msg))
}

// reply frames an encoded reply and queues it (flushed after the read batch).
func (c *conn) reply(payload []byte) {
	op := wsframe.OpBinary
	if c.sess.enc == codec.JSON {
		op = wsframe.OpText
	}
	c.send(wsframe.Frame(op, payload))
}

// replyAsync is reply for callbacks that may run on another goroutine: it
// flushes itself when nobody else will.
func (c *conn) replyAsync(payload []byte, onWorker bool) {
	if onWorker {
		c.reply(payload)
		return
	}
	op := wsframe.OpBinary
	if c.sess.enc == codec.JSON {
		op = wsframe.OpText
	}
	if c.Enqueue(wsframe.Frame(op, payload)) {
		c.Flush()
	}
}

// checkChannel validates a channel name, replying with an error if bad.
func (c *conn) checkChannel(cmd *codec.Command) bool {
	if !codec.ValidChannel(cmd.Channel, c.srv.cfg.MaxChannelBytes) {
		c.replyError(cmd.ID, codec.CodeBadChannel, "invalid channel name")
		return false
	}
	return true
}

func (c *conn) subscribe(cmd *codec.Command) {
	s := c.sess
	if !c.checkChannel(cmd) {
		return
	}
	if slices.Contains(s.subs, string(cmd.Channel)) {
		c.replyError(cmd.ID, codec.CodeAlreadySubscribed, "already subscribed")
		return
	}
	if len(s.subs) >= c.srv.cfg.MaxChannelsPerConn {
		c.replyError(cmd.ID, codec.CodeTooManyChannels, "too many channels")
		return
	}
	ch := string(cmd.Channel) // own copy: cmd aliases the read buffer
	if err := c.srv.hub.Subscribe(ch, c); err != nil {
		c.replyError(cmd.ID, codec.CodeInternal, err.Error())
		return
	}
	s.subs = append(s.subs, ch)
	id := cmd.ID
	var done atomic.Bool // the callback may run on this worker (memory) or later
	c.srv.broker.Position(ch, func(pos broker.Position, err error) {
		if err != nil {
			c.replyAsync(codec.AppendError(nil, s.enc, id, codec.CodeInternal, err.Error()), !done.Load())
			return
		}
		c.replyAsync(codec.AppendReply(nil, s.enc, codec.Reply{ID: id, Cmd: codec.CmdSubscribe, Offset: pos.Offset, Epoch: pos.Epoch}), !done.Load())
	})
	done.Store(true)
}

func (c *conn) unsubscribe(cmd *codec.Command) {
	s := c.sess
	i := slices.Index(s.subs, string(cmd.Channel))
	if i < 0 {
		c.replyError(cmd.ID, codec.CodeNotSubscribed, "not subscribed")
		return
	}
	c.srv.hub.Unsubscribe(s.subs[i], c)
	s.subs = slices.Delete(s.subs, i, i+1)
	c.reply(codec.AppendReply(nil, s.enc, codec.Reply{ID: cmd.ID, Cmd: codec.CmdUnsubscribe}))
}

func (c *conn) publish(cmd *codec.Command) {
	if !c.checkChannel(cmd) {
		return
	}
	s := c.sess
	id := cmd.ID
	data := append([]byte(nil), cmd.Data...) // own copy: it outlives the read buffer
	var done atomic.Bool
	c.srv.broker.Publish(string(cmd.Channel), data, func(pos broker.Position, err error) {
		var out []byte
		switch {
		case errors.Is(err, broker.ErrOverloaded):
			out = codec.AppendError(nil, s.enc, id, codec.CodeRateLimited, "overloaded, retry")
		case err != nil:
			out = codec.AppendError(nil, s.enc, id, codec.CodeInternal, err.Error())
		default:
			out = codec.AppendReply(nil, s.enc, codec.Reply{ID: id, Cmd: codec.CmdPublish, Offset: pos.Offset, Epoch: pos.Epoch})
		}
		c.replyAsync(out, !done.Load())
	})
	done.Store(true)
}

// leaveAll unsubscribes a closed connection from every channel. Called
// without c.mu: the hub never takes a connection lock under its own.
func (s *session) leaveAll(h *hub.Hub, c *conn) {
	for _, ch := range s.subs {
		h.Unsubscribe(ch, c)
	}
	s.subs = nil
}
