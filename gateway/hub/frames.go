package hub

import (
	"sync/atomic"
	"unsafe"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// format is what a subscriber receives: an encoding, compressed or not,
// and for compressed frames the client's window (deflate.Window). Each
// format of a publication is framed once, shared by its subscribers; a
// publication is compressed once per encoding, with the compressor's full
// window, and a smaller window's format picks, per publication, that
// compressed frame when the publication fits the window, else the plain
// one.
//
// The encoding is bit 0; above it, 0 for plain frames, 16 − window for
// compressed ones (1 for the full window 15, … 8 for window 8).
type format uint8

// formats counts them: msgpack and JSON, plain and windows 8–15.
const formats = 2 * 9

func (f format) encoding() codec.Encoding { return codec.Encoding(f & 1) }

// window is a compressed format's window (NoWindow: a plain format).
func (f format) window() deflate.Window {
	if k := f >> 1; k != 0 {
		return deflate.Window(16 - k)
	}
	return deflate.NoWindow
}

// compressedFormat is the format of encoding enc compressed for window w
// (8–15).
func compressedFormat(enc codec.Encoding, w deflate.Window) format {
	return format(enc) | format(16-w)<<1
}

// formatOf reads a subscriber's format (at Subscribe).
func formatOf(sub Subscriber, compress bool) format {
	enc := sub.Encoding()
	if d, ok := sub.(Deflater); ok && compress {
		if w := d.DeflateWindow(); w.Negotiated() {
			return compressedFormat(enc, min(max(w, 8), 15)) // 8–15 by contract
		}
	}
	return format(enc)
}

// buildWindow frames the run for a client's smaller window (format f,
// its plain frames built): it picks from the full window's compressed
// frames, compressing them first only if some publication fits.
func (w *worker) buildWindow(f format, pubs []*codec.Publication, frame frameFunc, built *[formats]bool) {
	plain, full := format(f.encoding()), compressedFormat(f.encoding(), 15)
	if !built[full] && anyFits(w.frames[plain], f.window()) {
		w.build(full, pubs, frame, built)
	}
	var z [][]byte // nil: nothing compressed (w.frames[full] may be stale)
	if built[full] {
		z = w.frames[full]
	}
	w.frames[f] = fitWindow(w.frames[f][:0], w.frames[plain], z, f.window())
	built[f] = true
}

// fitWindow appends, for each publication, its compressed frame when its
// plain payload fits window w, else its plain frame (plain and compressed
// are the run's frames of one encoding; compressed is nil when nothing
// was compressed because nothing fits). Nothing is compressed again.
func fitWindow(dst, plain, compressed [][]byte, w deflate.Window) [][]byte {
	for i, pf := range plain {
		if compressed != nil && w.Fits(len(pf)-serverHeaderSize(pf)) {
			dst = append(dst, compressed[i])
		} else {
			dst = append(dst, pf)
		}
	}
	return dst
}

// anyFits reports whether any of the plain frames fits window w: if none
// does, nothing needs compressing for that window.
func anyFits(plain [][]byte, w deflate.Window) bool {
	for _, pf := range plain {
		if w.Fits(len(pf) - serverHeaderSize(pf)) {
			return true
		}
	}
	return false
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
