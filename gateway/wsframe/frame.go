// Package wsframe is wsgate's RFC 6455 frame engine: an incremental,
// non-blocking decoder for client frames and helpers that build frames
// (server frames, and masked client frames for clients and tests). It does
// no I/O, so it can be fuzzed and tested on byte slices.
package wsframe

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/wsgate/wsgate/codec"
)

// Opcode is a WebSocket frame opcode.
type Opcode byte

// Opcodes defined by RFC 6455.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode.
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// Close status codes used by the engine (RFC 6455 §7.4.1) and by wsgate
// (4000–4999: gateway/closecodes.go and README.md's "Close codes").
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupported     uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never sent: means "close frame had no code"
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseTooBig          uint16 = 1009
	CloseInternalError   uint16 = 1011
)

// ValidCloseCode reports whether a peer may send code in a close frame.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// MaxControlPayload is the largest payload a control frame may carry.
const MaxControlPayload = 125

// MaxHeader is the largest frame header: 2 + 8 (length) + 4 (mask key).
const MaxHeader = 14

// MaxServerHeader is the largest unmasked (server) frame header.
const MaxServerHeader = 10

// AppendHeader appends an unmasked (server) frame header.
func AppendHeader(dst []byte, fin bool, op Opcode, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length <= 125:
		return append(dst, b0, byte(length))
	case length <= 0xFFFF:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// HeaderSize returns the size of a server frame header for length bytes.
func HeaderSize(length int) int {
	switch {
	case length <= 125:
		return 2
	case length <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

// AppendFrame appends a complete unmasked frame.
func AppendFrame(dst []byte, op Opcode, payload []byte) []byte {
	dst = AppendHeader(dst, true, op, len(payload))
	return append(dst, payload...)
}

// AppendClientFrame appends a complete masked (client) frame: the header
// with the mask bit set, key, and payload masked with key. The gateway
// never sends one; its load client and its tests do.
func AppendClientFrame(dst []byte, fin bool, op Opcode, key [4]byte, payload []byte) []byte {
	h := len(dst)
	dst = AppendHeader(dst, fin, op, len(payload))
	dst[h+1] |= 0x80 // mask bit
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	Mask(key, 0, dst[start:])
	return dst
}

// Frame returns a new buffer holding one complete unmasked frame.
func Frame(op Opcode, payload []byte) []byte {
	return AppendFrame(make([]byte, 0, HeaderSize(len(payload))+len(payload)), op, payload)
}

// CloseFrame builds a close frame. code 0 means "no status" (empty payload).
// The reason is cut so the payload fits a control frame, at a UTF-8 boundary.
func CloseFrame(code uint16, reason string) []byte {
	if code == 0 {
		return Frame(OpClose, nil)
	}
	if len(reason) > MaxControlPayload-2 {
		reason = reason[:MaxControlPayload-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, code)
	p = append(p, reason...)
	return Frame(OpClose, p)
}

// ParseClosePayload validates a received close payload: empty (no status),
// or a sendable code followed by a UTF-8 reason.
func ParseClosePayload(p []byte) (code uint16, reason []byte, err *Error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, nil, nil
	case len(p) == 1:
		return 0, nil, errorf(CloseProtocolError, "close payload of one byte")
	}
	code = binary.BigEndian.Uint16(p)
	if !ValidCloseCode(code) {
		return 0, nil, errorf(CloseProtocolError, "invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return 0, nil, errorf(CloseInvalidPayload, "close reason is not UTF-8")
	}
	return code, p[2:], nil
}

// Error is a protocol violation by the peer; Code is the close code to send.
type Error struct {
	Code   uint16
	Reason string
}

func (e *Error) Error() string { return "websocket: " + e.Reason }

func errorf(code uint16, reason string) *Error { return &Error{Code: code, Reason: reason} }

// Mask XORs p with the 4-byte key starting at key offset pos and returns
// the next offset. Works 8 bytes at a time where possible.
func Mask(key [4]byte, pos int, p []byte) int {
	// Rotate the key so that key[0] applies to p[0].
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		v := binary.LittleEndian.Uint64(p[i:])
		binary.LittleEndian.PutUint64(p[i:], v^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= k[i&3]
	}
	return (pos + len(p)) & 3
}

// OpcodeFor is the data frame opcode that carries enc: text for JSON,
// binary for MessagePack (codec/README.md). Every frame of the client
// protocol gets its opcode here.
func OpcodeFor(enc codec.Encoding) Opcode {
	if enc == codec.JSON {
		return OpText
	}
	return OpBinary
}
