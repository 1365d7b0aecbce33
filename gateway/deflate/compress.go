package deflate

import (
	"compress/flate"
	"sync"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// RSV1 is the first-byte bit that marks a compressed message (RFC 7692
// §6: the "Per-Message Compressed" bit, set on a message's first frame).
const RSV1 = 0x40

// level trades compression CPU for ratio. A publication is compressed once
// for all its subscribers, so the ratio is worth more than the CPU here;
// level 6 is zlib's own default.
const level = flate.DefaultCompression

// maxRetainedOutput bounds the output buffer a pooled compressor keeps:
// an occasional large message should not pin its buffer in the pool.
const maxRetainedOutput = 64 << 10

// syncTail is what a sync flush ends with (an empty stored block); RFC 7692
// §7.2.1 has the sender remove it and the receiver add it back.
var syncTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// compressor is a pooled flate.Writer and the buffer it writes into. Each
// message starts from a reset writer: no context takeover.
type compressor struct {
	fw  *flate.Writer
	out []byte
}

func (c *compressor) Write(p []byte) (int, error) {
	c.out = append(c.out, p...)
	return len(p), nil
}

var compressors = sync.Pool{New: func() any {
	c := &compressor{}
	fw, err := flate.NewWriter(c, level)
	if err != nil {
		panic("deflate: " + err.Error()) // only for an invalid level
	}
	c.fw = fw
	return c
}}

// compress deflates payload as one message into c.out (tail removed).
func (c *compressor) compress(payload []byte) []byte {
	c.out = c.out[:0]
	c.fw.Reset(c)
	// Neither call can fail: c.Write never does.
	_, _ = c.fw.Write(payload)
	_ = c.fw.Flush()
	out := c.out
	if n := len(out) - len(syncTail); n >= 0 && [4]byte(out[n:]) == syncTail {
		out = out[:n]
	}
	return out
}

func (c *compressor) release() {
	if cap(c.out) > maxRetainedOutput {
		c.out = nil
	}
	compressors.Put(c)
}

// Compress appends to dst the compressed form of payload as a message on
// a connection without context takeover (so valid on every such
// connection): DEFLATE, sync-flushed, without the 0x00 0x00 0xff 0xff
// tail (RFC 7692 §7.2.1).
func Compress(dst, payload []byte) []byte {
	c := compressors.Get().(*compressor)
	dst = append(dst, c.compress(payload)...)
	c.release()
	return dst
}

// Frame returns a new buffer holding one complete unmasked frame carrying
// payload compressed, with RSV1 set, and true. When compression does not
// make the payload smaller it returns nil and false: the caller sends the
// plain frame (RSV1 is per message, so mixing is allowed).
func Frame(op wsframe.Opcode, payload []byte) ([]byte, bool) {
	c := compressors.Get().(*compressor)
	defer c.release()
	z := c.compress(payload)
	if len(z) >= len(payload) {
		return nil, false
	}
	frame := make([]byte, 0, wsframe.HeaderSize(len(z))+len(z))
	frame = wsframe.AppendFrame(frame, op, z)
	frame[0] |= RSV1
	return frame, true
}
