package gateway

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/api"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// The server API's disconnect and unsubscribe act on connections, and a
// user's connections may be on any instance. The instance that serves the
// call acts on its own connections at once and publishes the command on
// commandChannel, which every instance subscribes to; the others act on it
// when the broker delivers it. Delivery is the broker's live delivery, at
// most once: an instance whose subscription to the broker is down at that
// moment (a Redis outage) misses it. The name is outside the channel
// grammar (codec.ValidChannel reserves '$' for the gateway), so no client
// or API caller can subscribe to it or publish on it, and it keeps no
// history (Namespaces.HistoryPolicy).
const commandChannel = "$wsgate:commands"

// Relayed command operations.
const (
	opDisconnect  = "disconnect"
	opUnsubscribe = "unsubscribe"
)

// serverCommand is a server-API command as it travels between instances.
type serverCommand struct {
	Op      string `msgpack:"op"`
	From    string `msgpack:"from"` // the relay id of the instance that ran it first
	User    string `msgpack:"user,omitempty"`
	Client  string `msgpack:"client,omitempty"`
	Channel string `msgpack:"channel,omitempty"` // unsubscribe
	Code    uint16 `msgpack:"code,omitempty"`    // disconnect
	Reason  string `msgpack:"reason,omitempty"`  // disconnect
}

var errBadCommand = errors.New("gateway: bad relayed command")

// decodeServerCommand reads a relayed command and checks it as the API
// checks a call: what arrives on commandChannel is whatever was published
// there (any Redis client can), so it is untrusted.
func decodeServerCommand(data []byte, maxChannelBytes int) (serverCommand, error) {
	var cmd serverCommand
	if err := msgpack.Unmarshal(data, &cmd); err != nil {
		return cmd, fmt.Errorf("%w: %v", errBadCommand, err)
	}
	if cmd.User == "" && cmd.Client == "" {
		return cmd, fmt.Errorf("%w: neither user nor client", errBadCommand)
	}
	switch cmd.Op {
	case opDisconnect:
		if cmd.Code < 4000 || cmd.Code > 4999 || len(cmd.Reason) > maxCloseReason || !utf8.ValidString(cmd.Reason) {
			return cmd, fmt.Errorf("%w: close code %d, reason of %d bytes", errBadCommand, cmd.Code, len(cmd.Reason))
		}
	case opUnsubscribe:
		if !codec.ValidChannel([]byte(cmd.Channel), maxChannelBytes) {
			return cmd, fmt.Errorf("%w: channel %q", errBadCommand, cmd.Channel)
		}
	default:
		return cmd, fmt.Errorf("%w: operation %q", errBadCommand, cmd.Op)
	}
	return cmd, nil
}

// maxCloseReason is the longest close reason a close frame carries: a
// control frame's payload less the code's 2 bytes.
const maxCloseReason = wsframe.MaxControlPayload - 2

// run applies cmd to this instance's matching connections and returns how
// many matched.
func (cmd serverCommand) run(s *Server) int {
	var fn func(c *conn)
	switch cmd.Op {
	case opDisconnect:
		fn = func(c *conn) { c.close(cmd.Code, cmd.Reason) }
	case opUnsubscribe:
		fn = func(c *conn) { c.sess.dropSubscription(cmd.Channel) }
	default:
		return 0
	}
	cs := s.index.lookup(cmd.User, cmd.Client)
	for _, c := range cs {
		c.runOnWorker(func() { fn(c) })
	}
	return len(cs)
}

// runEverywhere runs cmd here, then publishes it for the other instances.
// n is how many connections matched here. A command that could not be
// published is answered as unavailable (503: retry; running it again is
// harmless), its message saying it was done here.
func (b apiBackend) runEverywhere(ctx context.Context, cmd serverCommand) (n int, err error) {
	s := b.s
	n = cmd.run(s)
	if cmd.User == "" && cmd.Client == "" {
		return n, nil // every connection: outside the Backend's contract, so here only
	}
	cmd.From = s.relayID
	data, err := msgpack.Marshal(cmd)
	if err != nil {
		return n, fmt.Errorf("encode %s: %w", cmd.Op, err)
	}
	_, err = wait(ctx, func(done func(broker.PublishResult, error)) {
		s.broker.Publish(commandChannel, data, broker.PublishOptions{}, done)
	})
	if err != nil {
		s.metrics.CommandsNotRelayed.Add(1)
		return n, fmt.Errorf("%w: %s done on this instance (%d connections); the others may not have been told: %v",
			api.ErrUnavailable, cmd.Op, n, err)
	}
	return n, nil
}

// brokerSink is what the broker delivers to: the hub, except for
// commandChannel, whose publications are commands relayed by other
// instances.
type brokerSink struct {
	*hub.Hub
	s *Server
}

// Deliver implements broker.Sink.
func (k brokerSink) Deliver(p *codec.Publication) bool {
	if string(p.Channel) != commandChannel {
		return k.Hub.Deliver(p)
	}
	if p.Kind == codec.KindPublication {
		k.runRelayed(p.Data)
	}
	return true
}

// Resync implements broker.Sink. Commands missed while the broker's
// subscription was down are not replayed: they keep no history.
func (k brokerSink) Resync(channel string) {
	if channel != commandChannel {
		k.Hub.Resync(channel)
	}
}

// runRelayed runs a command another instance published. Its own come back
// too, and were run already.
func (k brokerSink) runRelayed(data []byte) {
	s := k.s
	cmd, err := decodeServerCommand(data, s.cfg.MaxChannelBytes)
	if err != nil {
		s.metrics.CommandsInvalid.Add(1)
		s.log.Debug("relayed command dropped", "err", err)
		return
	}
	if cmd.From == s.relayID {
		return
	}
	s.metrics.CommandsRelayed.Add(1)
	cmd.run(s)
}
