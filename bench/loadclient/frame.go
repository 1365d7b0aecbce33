package loadclient

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// maxServerHeader is the largest unmasked frame header: 2 + 8 length bytes.
const maxServerHeader = 10

// maxRetainedMessage is the largest assembly buffer kept for the next
// fragmented message; bigger ones are dropped so idle connections stay small.
const maxRetainedMessage = 64 << 10

// frameSink receives what a frameReader finds. Payloads are only valid
// during the call.
type frameSink interface {
	onMessage(op wsframe.Opcode, payload []byte)
	onPing(payload []byte)
	onClose(code uint16)
}

// frameReader decodes server (unmasked) frames incrementally. wsframe's
// Decoder only accepts masked client frames, hence this small twin. It
// copies nothing in the common case (a whole single-frame message in one
// read); otherwise it keeps at most a partial header, a partial control
// payload (≤125 bytes) and the message being assembled. Text payloads are
// not UTF-8 validated: this is a load client, not a conformance checker.
type frameReader struct {
	maxMessage int
	// deflate: permessage-deflate was negotiated, so RSV1 marks a
	// compressed message, inflated (through cache when set, else into
	// inflated) before delivery.
	deflate  bool
	cache    *inflateCache
	inflated []byte

	hdr  [maxServerHeader]byte // a header split across reads
	hdrN int

	// The frame whose payload is streaming in.
	inFrame   bool
	fin       bool
	op        wsframe.Opcode
	remaining int
	ctrl      []byte

	// The message being assembled (msgOp != 0).
	msgOp      wsframe.Opcode
	compressed bool
	msg        []byte

	closed bool // a close frame was received: ignore the rest
}

type frameHeader struct {
	fin    bool
	rsv1   bool
	op     wsframe.Opcode
	length int
}

func protocolError(code uint16, reason string) *wsframe.Error {
	return &wsframe.Error{Code: code, Reason: reason}
}

// feed consumes p entirely. A *wsframe.Error means the server broke the
// protocol and the connection must be closed with its Code.
func (r *frameReader) feed(p []byte, s frameSink) error {
	for len(p) > 0 && !r.closed {
		var err error
		if r.inFrame {
			p, err = r.payload(p, s)
		} else {
			var h frameHeader
			var ok bool
			h, p, ok, err = r.nextHeader(p)
			if ok && err == nil {
				p, err = r.begin(h, p, s)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nextHeader takes a header from p, buffering a partial one across calls.
// ok is false when more input is needed (then all of p was consumed).
func (r *frameReader) nextHeader(p []byte) (h frameHeader, rest []byte, ok bool, err error) {
	if r.hdrN == 0 {
		h, n, err := parseHeader(p)
		if err != nil || n > 0 {
			return h, p[n:], n > 0, err
		}
		r.hdrN = copy(r.hdr[:], p) // incomplete, so shorter than any header
		return h, nil, false, nil
	}
	k := copy(r.hdr[r.hdrN:], p)
	h, n, err := parseHeader(r.hdr[:r.hdrN+k])
	if err != nil || n == 0 {
		r.hdrN += k
		return h, nil, false, err
	}
	used := n - r.hdrN
	r.hdrN = 0
	return h, p[used:], true, nil
}

// parseHeader parses a server frame header; n == 0 means b is incomplete.
func parseHeader(b []byte) (h frameHeader, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	if b[0]&0x30 != 0 {
		return h, 0, protocolError(wsframe.CloseProtocolError, "reserved bits set without an extension")
	}
	h.rsv1 = b[0]&deflate.RSV1 != 0
	if b[1]&0x80 != 0 {
		return h, 0, protocolError(wsframe.CloseProtocolError, "masked frame from the server")
	}
	h.fin, h.op = b[0]&0x80 != 0, wsframe.Opcode(b[0]&0x0f)
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.length, n = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, 0, protocolError(wsframe.CloseProtocolError, "frame length has its top bit set")
		}
		h.length, n = int(v), 10
	default:
		h.length, n = int(l), 2
	}
	return h, n, nil
}

// check enforces the framing rules a server frame must follow.
func (r *frameReader) check(h frameHeader) error {
	if h.rsv1 && (!r.deflate || h.op.IsControl() || h.op == wsframe.OpContinuation) {
		return protocolError(wsframe.CloseProtocolError, "RSV1 where permessage-deflate does not allow it")
	}
	if h.op.IsControl() {
		switch {
		case h.op != wsframe.OpClose && h.op != wsframe.OpPing && h.op != wsframe.OpPong:
			return protocolError(wsframe.CloseProtocolError, "unknown control opcode")
		case !h.fin:
			return protocolError(wsframe.CloseProtocolError, "fragmented control frame")
		case h.length > wsframe.MaxControlPayload:
			return protocolError(wsframe.CloseProtocolError, "control frame too long")
		}
		return nil
	}
	switch {
	case h.op > wsframe.OpBinary:
		return protocolError(wsframe.CloseProtocolError, "unknown data opcode")
	case h.op == wsframe.OpContinuation && r.msgOp == 0:
		return protocolError(wsframe.CloseProtocolError, "continuation frame without a message")
	case h.op != wsframe.OpContinuation && r.msgOp != 0:
		return protocolError(wsframe.CloseProtocolError, "new message inside a fragmented one")
	case h.length > r.maxMessage-len(r.msg):
		return protocolError(wsframe.CloseTooBig, "message too big")
	}
	return nil
}

// begin starts a frame whose header was just read; p is what follows it.
func (r *frameReader) begin(h frameHeader, p []byte, s frameSink) ([]byte, error) {
	if err := r.check(h); err != nil {
		return nil, err
	}
	if h.length <= len(p) { // the whole payload is at hand: no copy
		return p[h.length:], r.whole(h, p[:h.length], s)
	}
	r.inFrame, r.fin, r.op, r.remaining = true, h.fin, h.op, h.length
	if h.op == wsframe.OpText || h.op == wsframe.OpBinary {
		r.msgOp, r.compressed = h.op, h.rsv1
	}
	return r.payload(p, s)
}

// whole handles a frame whose entire payload is in hand.
func (r *frameReader) whole(h frameHeader, payload []byte, s frameSink) error {
	if h.op.IsControl() {
		return r.control(h.op, payload, s)
	}
	if h.fin && h.op != wsframe.OpContinuation {
		return r.message(h.op, h.rsv1, payload, s)
	}
	if h.op != wsframe.OpContinuation {
		r.msgOp, r.compressed = h.op, h.rsv1
	}
	r.msg = append(r.msg, payload...)
	if h.fin {
		return r.deliver(s)
	}
	return nil
}

// message hands a complete message over, inflating a compressed one.
func (r *frameReader) message(op wsframe.Opcode, compressed bool, payload []byte, s frameSink) error {
	if !compressed {
		s.onMessage(op, payload)
		return nil
	}
	if r.cache != nil {
		out, err := r.cache.inflate(payload, r.maxMessage)
		if err != nil {
			return err
		}
		s.onMessage(op, out)
		return nil
	}
	out, err := deflate.Inflate(r.inflated[:0], payload, r.maxMessage)
	if cap(out) <= maxRetainedMessage {
		r.inflated = out[:0]
	}
	if err != nil {
		return err
	}
	s.onMessage(op, out)
	return nil
}

// payload consumes the streaming frame's payload bytes from p.
func (r *frameReader) payload(p []byte, s frameSink) ([]byte, error) {
	k := min(r.remaining, len(p))
	if r.op.IsControl() {
		r.ctrl = append(r.ctrl, p[:k]...)
	} else {
		r.msg = append(r.msg, p[:k]...)
	}
	r.remaining -= k
	p = p[k:]
	if r.remaining > 0 {
		return p, nil
	}
	r.inFrame = false
	if r.op.IsControl() {
		err := r.control(r.op, r.ctrl, s)
		r.ctrl = r.ctrl[:0]
		return p, err
	}
	if r.fin {
		return p, r.deliver(s)
	}
	return p, nil
}

// deliver hands the assembled message over and resets the assembly.
func (r *frameReader) deliver(s frameSink) error {
	err := r.message(r.msgOp, r.compressed, r.msg, s)
	r.msgOp, r.compressed = 0, false
	if cap(r.msg) > maxRetainedMessage {
		r.msg = nil
	} else {
		r.msg = r.msg[:0]
	}
	return err
}

func (r *frameReader) control(op wsframe.Opcode, payload []byte, s frameSink) error {
	switch op {
	case wsframe.OpPing:
		s.onPing(payload)
	case wsframe.OpClose:
		code, _, ferr := wsframe.ParseClosePayload(payload)
		if ferr != nil {
			return ferr
		}
		r.closed = true
		s.onClose(code)
	}
	return nil
}

// ClientFrame builds one masked client frame in a new buffer, with a fresh
// masking key (math/rand/v2's ChaCha8 source is unpredictable enough and
// cheap enough to call per frame).
func ClientFrame(op wsframe.Opcode, payload []byte) []byte {
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b := make([]byte, 0, wsframe.HeaderSize(len(payload))+4+len(payload))
	return wsframe.AppendClientFrame(b, true, op, key, payload)
}

// clientCloseFrame builds a masked close frame; code 0 or 1005 means an
// empty payload (1005 must never be sent).
func clientCloseFrame(code uint16) []byte {
	if code == 0 || code == wsframe.CloseNoStatus {
		return ClientFrame(wsframe.OpClose, nil)
	}
	return ClientFrame(wsframe.OpClose, binary.BigEndian.AppendUint16(nil, code))
}
