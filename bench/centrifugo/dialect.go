package centrifugo

import (
	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// Path is Centrifugo's WebSocket endpoint (websocket.handler_prefix).
const Path = "/connection/websocket"

// Dialect is Centrifugo's JSON client protocol for the load client: text
// frames, a connect command before anything else, batched server frames
// split at newlines, and application-level pings answered with a pong.
type Dialect struct{}

var _ drive.Dialect = Dialect{}

// Name implements drive.Dialect.
func (Dialect) Name() string { return "centrifugo JSON (protocol v2)" }

// Path implements drive.Dialect.
func (Dialect) Path() string { return Path }

// Opcode implements drive.Dialect: the JSON protocol travels in text
// frames.
func (Dialect) Opcode() byte { return loadclient.OpText }

// Connect implements drive.Dialect.
func (Dialect) Connect(id uint32) []byte { return ConnectCommand(id) }

// Subscribe implements drive.Dialect.
func (Dialect) Subscribe(id uint32, channel string) []byte { return SubscribeCommand(id, channel) }

// Hello implements drive.Dialect: connect and subscribe in one message,
// which the server processes in order.
func (Dialect) Hello(channel string) []byte {
	return Batch(ConnectCommand(1), SubscribeCommand(2, channel))
}

// Read implements drive.Dialect. Every line of msg is one frame; a frame
// that does not parse is skipped and reported after the others.
func (Dialect) Read(msg []byte, fn func(drive.Frame)) error {
	var firstErr error
	Split(msg, func(b []byte) {
		f, err := ParseFrame(b)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		fn(toDrive(&f, len(b)))
	})
	return firstErr
}

// toDrive says what a frame means to the harness.
func toDrive(f *Frame, size int) drive.Frame {
	out := drive.Frame{Bytes: size}
	switch {
	case f.IsReply():
		out.Kind, out.Failed = drive.KindReply, f.HasError
	case f.IsPublication():
		out.Kind = drive.KindMessage
		out.Seq, out.Sent, out.Stamped = ParseStamp(f.Data)
	case f.IsPing():
		out.Kind, out.Pong = drive.KindPing, Pong
	}
	return out
}
