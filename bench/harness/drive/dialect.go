package drive

import (
	"time"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// Dialect is one design's client protocol as the harness speaks it: where
// to upgrade, what to send to become a client and to subscribe, and how to
// read what the server sends. wsgate and the naive server share one
// (Wsgate); Centrifugo's is in bench/centrifugo.
type Dialect interface {
	// Name labels the dialect in errors.
	Name() string
	// Path is the upgrade request path.
	Path() string
	// Opcode is the WebSocket opcode of every command (text or binary).
	Opcode() byte
	// Connect returns the command a connection sends after the upgrade
	// before anything else, answered with a reply of this id; nil when the
	// upgrade is all it takes.
	Connect(id uint32) []byte
	// Subscribe returns a command subscribing to channel, answered with a
	// reply of this id.
	Subscribe(id uint32, channel string) []byte
	// Hello is one message that connects (when the dialect needs it) and
	// subscribes to channel, for clients that never read the replies.
	Hello(channel string) []byte
	// Read decodes one server message and calls fn for every frame in it
	// (a server may batch several). Frames before a malformed one are
	// still reported; the error says what was malformed.
	Read(msg []byte, fn func(Frame)) error
}

// FrameKind is what a server frame means to the harness.
type FrameKind uint8

// Frame kinds.
const (
	KindOther   FrameKind = iota // nothing the harness counts
	KindMessage                  // a publication delivered on a subscription
	KindReply                    // the answer to a command (Failed: refused)
	KindPing                     // an application-level ping: send Pong back
)

// Frame is one decoded server frame.
type Frame struct {
	Kind   FrameKind
	Failed bool // a reply carrying an error
	// A message's stamp (see wire.Stamp); Stamped is false when its data
	// carries none.
	Seq     uint64
	Sent    time.Time
	Stamped bool
	// Bytes is the frame's size as the server encoded it (a batched frame
	// without its separator).
	Bytes int
	// Pong is what a KindPing frame asks to be sent back.
	Pong []byte
}

// Wsgate is the dialect of wsgate's client protocol in MessagePack, which
// the naive server speaks too: no connect step, one frame per message.
type Wsgate struct{}

// Name implements Dialect.
func (Wsgate) Name() string { return "wsgate.v1.msgpack" }

// Path implements Dialect.
func (Wsgate) Path() string { return Path }

// Opcode implements Dialect.
func (Wsgate) Opcode() byte { return loadclient.OpBinary }

// Connect implements Dialect: an upgraded connection is a session already.
func (Wsgate) Connect(uint32) []byte { return nil }

// Subscribe implements Dialect.
func (Wsgate) Subscribe(id uint32, channel string) []byte { return wire.Subscribe(id, channel) }

// Hello implements Dialect.
func (Wsgate) Hello(channel string) []byte { return wire.Subscribe(1, channel) }

// Read implements Dialect. Pings are WebSocket control frames, which the
// load client answers itself.
func (Wsgate) Read(msg []byte, fn func(Frame)) error {
	p, err := wire.ParsePush(msg)
	if err != nil {
		return err
	}
	f := Frame{Bytes: len(msg)}
	switch {
	case p.IsMessage():
		f.Kind = KindMessage
		f.Seq, f.Sent, f.Stamped = wire.ParseStamp(p.Data)
	case p.IsReply():
		f.Kind, f.Failed = KindReply, p.HasError
	}
	fn(f)
	return nil
}
