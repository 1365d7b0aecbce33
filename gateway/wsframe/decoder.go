package wsframe

import (
	"encoding/binary"
	"errors"
)

// Sink receives what a Decoder finds. Payload slices are only valid during
// the call (they usually point into the caller's read buffer).
type Sink interface {
	// OnMessage receives a complete text or binary message. A non-nil error
	// stops decoding and is returned by Decode.
	OnMessage(op Opcode, payload []byte) error
	OnPing(payload []byte)
	OnPong(payload []byte)
	// OnClose receives a validated close frame (code CloseNoStatus when it
	// had no payload). The decoder ignores everything after it.
	OnClose(code uint16, reason []byte)
}

// Decoder parses client frames incrementally: Decode consumes whatever part
// of the input it can and the caller keeps the rest (never more than
// MaxLeftover bytes: an incomplete header, or an incomplete control frame)
// to prepend to the next read. Data frame payloads are consumed as they
// arrive, so a large frame that trickles in costs only what has arrived.
//
// A single-frame message that is complete in the input (the common case)
// is unmasked in place and handed to the Sink without a copy. Otherwise the
// payload accumulates in an internal buffer bounded by MaxMessage.
//
// The zero Decoder with MaxMessage set is ready to use.
type Decoder struct {
	// MaxMessage bounds a message's total payload (all fragments) as it
	// arrives and, for a compressed message, its inflated size too.
	MaxMessage int

	// Inflate, when set, means permessage-deflate was negotiated (RFC
	// 7692): a message whose first frame has RSV1 set is inflated with it
	// (appending to dst, failing once past limit bytes) before the Sink
	// sees it. Without it RSV1 is a protocol error.
	Inflate func(dst, compressed []byte, limit int) ([]byte, error)

	// The data frame whose payload is streaming in (inFrame).
	inFrame   bool
	fin       bool
	maskPos   uint8
	mask      [4]byte
	remaining int

	// The message being assembled (msgOp != 0).
	msgOp      Opcode
	compressed bool // the message's first frame had RSV1
	utf8       utf8Validator
	msg        []byte
	inflated   []byte // output buffer for compressed messages

	closed bool
}

// MaxLeftover is the most input Decode ever leaves unconsumed: a control
// frame's header (at most 14 bytes) plus up to 125 payload bytes.
const MaxLeftover = MaxHeader + MaxControlPayload

// maxRetainedBuffer is the largest assembly buffer kept for the next message.
const maxRetainedBuffer = 16 << 10

// Idle reports whether the decoder holds no partial frame or message, so
// the caller may drop or recycle it.
func (d *Decoder) Idle() bool { return !d.inFrame && d.msgOp == 0 }

// Buffered is the number of payload bytes held for the message being
// assembled (the memory a partial message costs beyond the leftover).
func (d *Decoder) Buffered() int { return len(d.msg) }

// Closed reports whether a close frame has been received.
func (d *Decoder) Closed() bool { return d.closed }

// Reset returns the decoder to its initial state, keeping MaxMessage,
// Inflate and small buffers.
func (d *Decoder) Reset() {
	*d = Decoder{MaxMessage: d.MaxMessage, Inflate: d.Inflate, msg: retain(d.msg), inflated: retain(d.inflated)}
}

// retain empties a buffer for reuse, or drops it when it is large.
func retain(b []byte) []byte {
	if cap(b) > maxRetainedBuffer {
		return nil
	}
	return b[:0]
}

// Decode consumes frames from p, unmasking p in place, and returns how many
// bytes it consumed. A *Error means the peer violated the protocol and the
// connection must be closed with Error.Code; other errors come from the Sink.
func (d *Decoder) Decode(p []byte, s Sink) (int, error) {
	n := 0
	for n < len(p) && !d.closed {
		var k int
		var err error
		if d.inFrame {
			k, err = d.payload(p[n:], s)
		} else {
			k, err = d.frame(p[n:], s)
		}
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			break // need more input
		}
	}
	if d.closed {
		return len(p), nil
	}
	return n, nil
}

// frame parses one frame header at the start of p. It returns 0 when the
// header (or a control frame) is incomplete; checks that only need the
// first bytes run before that, so a bad frame fails as early as possible.
func (d *Decoder) frame(p []byte, s Sink) (int, error) {
	if err := d.checkFirstByte(p[0]); err != nil {
		return 0, err
	}
	fin, op, compressed := p[0]&0x80 != 0, Opcode(p[0]&0x0F), p[0]&rsv1 != 0
	if len(p) < 2 {
		return 0, nil
	}
	if p[1]&0x80 == 0 {
		return 0, errorf(CloseProtocolError, "client frame is not masked")
	}
	length, hlen := uint64(p[1]&0x7F), 2+4
	switch length {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	}
	if len(p) < hlen {
		return 0, nil
	}
	switch hlen {
	case 8:
		length = uint64(binary.BigEndian.Uint16(p[2:]))
	case 14:
		length = binary.BigEndian.Uint64(p[2:])
		if length>>63 != 0 {
			return 0, errorf(CloseProtocolError, "frame length has the most significant bit set")
		}
	}
	var key [4]byte
	copy(key[:], p[hlen-4:hlen])
	if op.IsControl() {
		// Checked on the decoded length: a non-minimal length encoding is
		// accepted for control frames as for data frames.
		if length > MaxControlPayload {
			return 0, errorf(CloseProtocolError, "control frame payload over 125 bytes")
		}
		return d.control(p, hlen, int(length), op, key, s)
	}
	if length > uint64(d.wireLimit(compressed || op == OpContinuation && d.compressed)-len(d.msg)) {
		return 0, errorf(CloseTooBig, "message too big")
	}
	if fin && op != OpContinuation && uint64(len(p)-hlen) >= length {
		return d.whole(p[hlen:hlen+int(length)], op, compressed, key, s, hlen)
	}
	d.inFrame, d.fin, d.mask, d.maskPos, d.remaining = true, fin, key, 0, int(length)
	if op != OpContinuation {
		d.msgOp, d.compressed = op, compressed
		d.utf8.reset()
	}
	k, err := d.payload(p[hlen:], s)
	return hlen + k, err
}

// rsv1 marks a compressed message (RFC 7692 §6) on its first frame.
const rsv1 = 0x40

// wireLimit is the most payload a message may bring on the wire. A
// compressed message is bounded by MaxMessage once inflated; on the wire
// it may be larger than what it inflates to: clients compress
// incompressible data too, and with a small zlib memLevel (Python's
// websockets uses 5) stored blocks come every few KiB, 5 bytes each. So
// it gets zlib's conservative bound on DEFLATE output for MaxMessage bytes
// of input under any settings (deflateBound in zlib's deflate.c), plus the
// 4-byte sync tail for senders that keep it.
func (d *Decoder) wireLimit(compressed bool) int {
	n := d.MaxMessage
	if !compressed {
		return n
	}
	return n + (n+7)>>3 + (n+63)>>6 + 5 + 4
}

func (d *Decoder) checkFirstByte(b0 byte) error {
	op := Opcode(b0 & 0x0F)
	switch {
	case b0&0x30 != 0:
		return errorf(CloseProtocolError, "reserved bits set")
	case b0&rsv1 != 0 && d.Inflate == nil:
		return errorf(CloseProtocolError, "RSV1 set without permessage-deflate")
	case b0&rsv1 != 0 && op.IsControl():
		return errorf(CloseProtocolError, "RSV1 set on a control frame")
	case b0&rsv1 != 0 && op == OpContinuation:
		return errorf(CloseProtocolError, "RSV1 set on a continuation frame")
	case op > OpBinary && op < OpClose, op > OpPong:
		return errorf(CloseProtocolError, "reserved opcode")
	case op.IsControl() && b0&0x80 == 0:
		return errorf(CloseProtocolError, "fragmented control frame")
	case op == OpContinuation && d.msgOp == 0:
		return errorf(CloseProtocolError, "continuation frame without a message")
	case (op == OpText || op == OpBinary) && d.msgOp != 0:
		return errorf(CloseProtocolError, "new message inside a fragmented message")
	}
	return nil
}

// whole delivers a single-frame message that is complete in the input.
func (d *Decoder) whole(payload []byte, op Opcode, compressed bool, key [4]byte, s Sink, hlen int) (int, error) {
	Mask(key, 0, payload)
	if compressed {
		if err := d.inflate(op, payload, s); err != nil {
			return 0, err
		}
		return hlen + len(payload), nil
	}
	if op == OpText {
		var v utf8Validator
		if !v.write(payload) || !v.complete() {
			return 0, errorf(CloseInvalidPayload, "text message is not UTF-8")
		}
	}
	return hlen + len(payload), s.OnMessage(op, payload)
}

// control handles a control frame once all of it is in p.
func (d *Decoder) control(p []byte, hlen, length int, op Opcode, key [4]byte, s Sink) (int, error) {
	if len(p) < hlen+length {
		return 0, nil
	}
	payload := p[hlen : hlen+length]
	Mask(key, 0, payload)
	switch op {
	case OpPing:
		s.OnPing(payload)
	case OpPong:
		s.OnPong(payload)
	case OpClose:
		code, reason, err := ParseClosePayload(payload)
		if err != nil {
			return 0, err
		}
		d.closed = true
		s.OnClose(code, reason)
	}
	return hlen + length, nil
}

// payload consumes the streaming payload of the current data frame.
func (d *Decoder) payload(p []byte, s Sink) (int, error) {
	chunk := p[:min(len(p), d.remaining)]
	d.maskPos = uint8(Mask(d.mask, int(d.maskPos), chunk))
	if d.msgOp == OpText && !d.compressed && !d.utf8.write(chunk) {
		return 0, errorf(CloseInvalidPayload, "text message is not UTF-8")
	}
	d.msg = append(d.msg, chunk...)
	d.remaining -= len(chunk)
	if d.remaining > 0 {
		return len(chunk), nil
	}
	d.inFrame = false
	if !d.fin {
		return len(chunk), nil
	}
	if d.msgOp == OpText && !d.compressed && !d.utf8.complete() {
		return 0, errorf(CloseInvalidPayload, "text message is not UTF-8")
	}
	op, msg, compressed := d.msgOp, d.msg, d.compressed
	d.msgOp, d.compressed, d.msg = 0, false, retain(d.msg)
	if compressed {
		return len(chunk), d.inflate(op, msg, s)
	}
	return len(chunk), s.OnMessage(op, msg)
}

// inflate decompresses a complete compressed message, bounded by
// MaxMessage, checks a text message's UTF-8 and delivers it. Errors that
// are not a *Error (invalid compressed data) close with 1007.
func (d *Decoder) inflate(op Opcode, compressed []byte, s Sink) error {
	out, err := d.Inflate(d.inflated[:0], compressed, d.MaxMessage)
	d.inflated = retain(out)
	if err != nil {
		var ferr *Error
		if errors.As(err, &ferr) {
			return ferr
		}
		return errorf(CloseInvalidPayload, "invalid compressed data")
	}
	if op == OpText {
		var v utf8Validator
		if !v.write(out) || !v.complete() {
			return errorf(CloseInvalidPayload, "text message is not UTF-8")
		}
	}
	return s.OnMessage(op, out)
}
