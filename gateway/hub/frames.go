package hub

import (
	"sync/atomic"
	"unsafe"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// format is what a subscriber receives: an encoding, compressed or not.
// Each format of a publication is framed once, shared by its subscribers.
type format uint8

// deflated is added to the encoding for compressed frames.
const deflated format = 2

// formats counts them: msgpack and JSON, plain and compressed.
const formats = 4

func (f format) encoding() codec.Encoding { return codec.Encoding(f &^ deflated) }

// formatOf reads a subscriber's format (at Subscribe).
func formatOf(sub Subscriber, compress bool) format {
	f := format(sub.Encoding())
	if d, ok := sub.(Deflater); ok && compress && d.Deflate() {
		f |= deflated
	}
	return f
}

// compressFrame returns the compressed form of a server frame, or the
// frame itself when its payload is under minBytes or does not shrink.
// Frames are never modified, so returning the same bytes is safe.
func compressFrame(frame []byte, minBytes int, count *atomic.Int64) []byte {
	op := wsframe.Opcode(frame[0] & 0x0F)
	payload := frame[serverHeaderSize(frame):]
	if len(payload) < minBytes {
		return frame
	}
	count.Add(1)
	if z, ok := deflate.Frame(op, payload); ok {
		return z
	}
	return frame
}

// serverHeaderSize reads the header size of an unmasked frame.
func serverHeaderSize(frame []byte) int {
	switch frame[1] & 0x7F {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

// frameFunc frames a publication (or an event) for one encoding.
type frameFunc func(codec.Encoding, *codec.Publication) []byte

// messageFrame builds one complete WebSocket frame for p in one allocation:
// the payload is encoded after room for the largest header, then the header
// is written right before it.
func messageFrame(enc codec.Encoding, p *codec.Publication) []byte {
	buf := make([]byte, wsframe.MaxServerHeader, wsframe.MaxServerHeader+len(p.Data)+len(p.Channel)+48)
	// The channel is only copied into buf, so viewing its bytes as a string
	// in place is safe and saves an allocation per publication.
	channel := unsafe.String(unsafe.SliceData(p.Channel), len(p.Channel))
	epoch := unsafe.String(unsafe.SliceData(p.Epoch), len(p.Epoch))
	buf = codec.AppendMessage(buf, enc, channel, p.Offset, epoch, p.Data)
	return frameIn(buf, enc)
}

// eventFrame builds the WebSocket frame of a join/leave push for p.
func eventFrame(enc codec.Encoding, p *codec.Publication) []byte {
	buf := make([]byte, wsframe.MaxServerHeader, wsframe.MaxServerHeader+len(p.Channel)+len(p.Client)+len(p.User)+64)
	// Only copied into buf: string views in place are safe.
	channel := unsafe.String(unsafe.SliceData(p.Channel), len(p.Channel))
	client := unsafe.String(unsafe.SliceData(p.Client), len(p.Client))
	user := unsafe.String(unsafe.SliceData(p.User), len(p.User))
	if p.Kind == codec.KindJoin {
		buf = codec.AppendJoin(buf, enc, channel, client, user)
	} else {
		buf = codec.AppendLeave(buf, enc, channel, client, user)
	}
	return frameIn(buf, enc)
}

// frameIn writes the WebSocket header into the room reserved at the start
// of buf (wsframe.MaxServerHeader bytes, payload after it) and returns the
// frame.
func frameIn(buf []byte, enc codec.Encoding) []byte {
	n := len(buf) - wsframe.MaxServerHeader
	start := wsframe.MaxServerHeader - wsframe.HeaderSize(n)
	wsframe.AppendHeader(buf[start:start], true, wsframe.OpcodeFor(enc), n)
	return buf[start:]
}
