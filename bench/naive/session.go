package naive

import (
	"errors"
	"slices"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

// onMessage runs one client command. As in wsgate: a message of the wrong
// type for the subprotocol closes with 1003, one that is not a command at
// all with 1007, and a bad command whose id could be read gets an error
// reply. Every command is answered, even with id 0, exactly as wsgate does,
// so both servers do the same work per command.
func (c *client) onMessage(mt int, data []byte) {
	if mt != messageType(c.enc) {
		c.protocolError(closeUnsupported, "wrong frame type for the subprotocol")
		return
	}
	var cmd codec.Command
	if err := codec.DecodeCommand(c.enc, data, &cmd); err != nil {
		var derr *codec.DecodeError
		if errors.As(err, &derr) && derr.IDKnown {
			c.reply(codec.AppendError(nil, c.enc, derr.ID, derr.Code, derr.Message()))
			return
		}
		c.protocolError(closeInvalid, "undecodable command")
		return
	}
	switch cmd.Cmd {
	case codec.CmdPing:
		c.reply(codec.AppendReply(nil, c.enc, codec.Reply{ID: cmd.ID, Cmd: codec.CmdPing}))
	case codec.CmdSubscribe:
		c.subscribe(&cmd)
	case codec.CmdUnsubscribe:
		c.unsubscribe(&cmd)
	case codec.CmdPublish:
		c.publish(&cmd)
	default: // history, presence, refresh: wsgate features the baseline lacks
		c.replyError(cmd.ID, codec.CodeNotAvailable, "command not available")
	}
}

func (c *client) protocolError(code int, text string) {
	c.srv.metrics.ProtocolErrors.Add(1)
	c.stop(code, text)
}

func (c *client) replyError(id uint32, code codec.ErrorCode, msg string) {
	c.reply(codec.AppendError(nil, c.enc, id, code, msg))
}

// checkChannel validates a channel name, replying with an error if bad.
func (c *client) checkChannel(cmd *codec.Command) bool {
	if !codec.ValidChannel(cmd.Channel, codec.DefaultMaxChannelBytes) {
		c.replyError(cmd.ID, codec.CodeBadChannel, "invalid channel name")
		return false
	}
	return true
}

func (c *client) subscribe(cmd *codec.Command) {
	if !c.checkChannel(cmd) {
		return
	}
	if slices.Contains(c.subs, string(cmd.Channel)) {
		c.replyError(cmd.ID, codec.CodeAlreadySubscribed, "already subscribed")
		return
	}
	if len(c.subs) >= codec.DefaultMaxChannels {
		c.replyError(cmd.ID, codec.CodeTooManyChannels, "too many channels")
		return
	}
	ch := string(cmd.Channel) // own copy: cmd aliases the message
	c.srv.hub.subscribe(ch, c)
	c.subs = append(c.subs, ch)
	// The callback may run later on a broker goroutine: it captures copies,
	// and reply only touches the send channel.
	id, resume := cmd.ID, cmd.HasOffset
	offset, epoch := cmd.Offset, string(cmd.Epoch)
	c.srv.broker.Position(ch, func(pos broker.Position, err error) {
		if err != nil {
			c.replyError(id, codec.CodeInternal, err.Error())
			return
		}
		r := codec.Reply{ID: id, Cmd: codec.CmdSubscribe, Offset: pos.Offset, Epoch: pos.Epoch}
		if resume {
			setRecovery(&r, offset, epoch)
		}
		c.reply(codec.AppendReply(nil, c.enc, r))
	})
}

// setRecovery answers a resume request. This server keeps no history, so
// the position is recovered only when nothing was missed.
func setRecovery(r *codec.Reply, offset uint64, epoch string) {
	r.Resumed = true
	switch {
	case epoch != r.Epoch:
		r.Reason = "epoch changed"
	case offset != r.Offset:
		r.Reason = "history not available"
	default:
		r.Recovered = true
	}
}

func (c *client) unsubscribe(cmd *codec.Command) {
	i := slices.Index(c.subs, string(cmd.Channel))
	if i < 0 {
		c.replyError(cmd.ID, codec.CodeNotSubscribed, "not subscribed")
		return
	}
	c.srv.hub.unsubscribe(c.subs[i], c)
	c.subs = slices.Delete(c.subs, i, i+1)
	c.reply(codec.AppendReply(nil, c.enc, codec.Reply{ID: cmd.ID, Cmd: codec.CmdUnsubscribe}))
}

func (c *client) publish(cmd *codec.Command) {
	if !c.checkChannel(cmd) {
		return
	}
	id := cmd.ID
	// cmd.Data may be kept by the broker without a copy: it aliases the
	// message, which gorilla's ReadMessage allocates afresh every time.
	// With the memory broker, Publish fans out to every subscriber right
	// here, on this client's read goroutine: the naive hub's defining trait.
	opts := broker.PublishOptions{IdempotencyKey: string(cmd.IdempotencyKey)}
	c.srv.broker.Publish(string(cmd.Channel), cmd.Data, opts, func(res broker.PublishResult, err error) {
		switch {
		case errors.Is(err, broker.ErrOverloaded):
			c.replyError(id, codec.CodeRateLimited, "overloaded, retry")
		case errors.Is(err, broker.ErrOutcomeUnknown):
			c.replyError(id, codec.CodeOutcomeUnknown, err.Error())
		case err != nil:
			c.replyError(id, codec.CodeInternal, err.Error())
		default:
			c.reply(codec.AppendReply(nil, c.enc, codec.Reply{ID: id, Cmd: codec.CmdPublish, Offset: res.Offset, Epoch: res.Epoch, Replayed: res.Replayed}))
		}
	})
}

// leaveAll unsubscribes a finished client from every channel.
func (c *client) leaveAll() {
	for _, ch := range c.subs {
		c.srv.hub.unsubscribe(ch, c)
	}
	c.subs = nil
}
