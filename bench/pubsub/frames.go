package pubsub

import (
	"errors"
	"strings"
)

// frameKind classifies a server frame by its "type".
type frameKind uint8

const (
	kindOther   frameKind = iota // join, leave, anything newer
	kindReply                    // "reply"
	kindMessage                  // "message"
	kindGap                      // "gap": offsets from..to were lost
)

// serverFrame is the part of a server frame this checker looks at. The
// byte slices alias the decoded frame.
type serverFrame struct {
	kind    frameKind
	id      uint32
	errCode uint32 // 0: not an error reply
	errMsg  []byte
	channel []byte
	offset  uint64
	data    []byte // the published bytes (MessagePack "data", JSON raw "data")
	b64     []byte // JSON "b64": base64 of the published bytes
	from    uint64 // gap
	to      uint64 // gap
}

var errFrame = errors.New("malformed server frame")

// The server is trusted: these decoders are small and allocation-free, not
// hardened. They still never panic on bad input (every read is checked),
// and they accept any key order, unknown keys and any integer width, as
// the protocol asks of clients.

// decodeMsgpack decodes a MessagePack server frame into f.
func decodeMsgpack(b []byte, f *serverFrame) error {
	*f = serverFrame{}
	r := mpReader{b: b}
	n := r.mapLen()
	for i := 0; i < n && !r.bad; i++ {
		key := r.str()
		switch string(key) {
		case "type":
			f.kind = kindOf(r.str())
		case "id":
			f.id = uint32(r.uint())
		case "channel":
			f.channel = r.str()
		case "offset":
			f.offset = r.uint()
		case "data":
			f.data = r.str()
		case "from":
			f.from = r.uint()
		case "to":
			f.to = r.uint()
		case "error":
			r.mpError(f)
		default:
			r.skip(0)
		}
	}
	if r.bad || len(r.b) != 0 {
		return errFrame
	}
	return nil
}

func kindOf(typ []byte) frameKind {
	switch string(typ) {
	case "reply":
		return kindReply
	case "message":
		return kindMessage
	case "gap":
		return kindGap
	}
	return kindOther
}

// mpReader reads MessagePack values from b; after the first problem bad is
// set and every read returns a zero value.
type mpReader struct {
	b   []byte
	bad bool
}

func (r *mpReader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *mpReader) byte() byte {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

// be reads an n-byte big-endian unsigned integer (n ≤ 8).
func (r *mpReader) be(n int) uint64 {
	p := r.take(n)
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}

func (r *mpReader) mapLen() int {
	c := r.byte()
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f)
	case c == 0xde:
		return int(r.be(2))
	case c == 0xdf:
		return int(r.be(4))
	}
	r.bad = true
	return 0
}

// str reads a str or bin value (nil reads as empty).
func (r *mpReader) str() []byte {
	c := r.byte()
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return r.take(int(c & 0x1f))
	case c == 0xd9 || c == 0xc4:
		return r.take(int(r.be(1)))
	case c == 0xda || c == 0xc5:
		return r.take(int(r.be(2)))
	case c == 0xdb || c == 0xc6:
		return r.take(int(r.be(4)))
	case c == 0xc0:
		return nil
	}
	r.bad = true
	return nil
}

// uint reads a non-negative integer of any width.
func (r *mpReader) uint() uint64 {
	c := r.byte()
	switch {
	case c <= 0x7f:
		return uint64(c)
	case c >= 0xcc && c <= 0xcf: // uint8 … uint64
		return r.be(1 << (c - 0xcc))
	case c >= 0xd0 && c <= 0xd3: // int8 … int64, accepted when ≥ 0
		n := 1 << (c - 0xd0)
		v := r.be(n)
		if v>>(uint(n)*8-1) != 0 {
			r.bad = true
			return 0
		}
		return v
	}
	r.bad = true
	return 0
}

// mpError reads an error reply's {"code","message"} map.
func (r *mpReader) mpError(f *serverFrame) {
	n := r.mapLen()
	for i := 0; i < n && !r.bad; i++ {
		switch string(r.str()) {
		case "code":
			f.errCode = uint32(r.uint())
		case "message":
			f.errMsg = r.str()
		default:
			r.skip(0)
		}
	}
}

// maxSkipDepth bounds nesting in skipped values.
const maxSkipDepth = 32

// skip steps over one value of any type.
func (r *mpReader) skip(depth int) {
	if depth > maxSkipDepth {
		r.bad = true
		return
	}
	c := r.byte()
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		// fixint, nil, bool: nothing follows
	case c >= 0x80 && c <= 0x8f:
		r.skipN(2*int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		r.skipN(int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		r.take(int(c & 0x1f))
	default:
		r.skipLong(c, depth)
	}
}

// skipLong handles the 0xc4 … 0xdf formats.
func (r *mpReader) skipLong(c byte, depth int) {
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		r.take(int(r.be(1)))
	case 0xc5, 0xda:
		r.take(int(r.be(2)))
	case 0xc6, 0xdb:
		r.take(int(r.be(4)))
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type, data
		n := int(r.be(1 << (c - 0xc7)))
		r.take(1 + n)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		r.take(4)
	case 0xcb, 0xcf, 0xd3:
		r.take(8)
	case 0xcc, 0xd0:
		r.take(1)
	case 0xcd, 0xd1:
		r.take(2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16 plus the type byte
		r.take(1 + 1<<(c-0xd4))
	case 0xdc:
		r.skipN(int(r.be(2)), depth)
	case 0xdd:
		r.skipN(int(r.be(4)), depth)
	case 0xde:
		r.skipN(2*int(r.be(2)), depth)
	case 0xdf:
		r.skipN(2*int(r.be(4)), depth)
	default: // 0xc1 is never used
		r.bad = true
	}
}

func (r *mpReader) skipN(n, depth int) {
	for i := 0; i < n && !r.bad; i++ {
		r.skip(depth + 1)
	}
}

// decodeJSON decodes a JSON server frame into f.
func decodeJSON(b []byte, f *serverFrame) error {
	*f = serverFrame{}
	s := jsonScanner{b: b}
	s.object(func(key []byte) {
		switch string(key) {
		case "type":
			f.kind = kindOf(s.str())
		case "id":
			f.id = uint32(s.uint())
		case "channel":
			f.channel = s.str()
		case "offset":
			f.offset = s.uint()
		case "from":
			f.from = s.uint()
		case "to":
			f.to = s.uint()
		case "data":
			f.data = s.value(0)
		case "b64":
			f.b64 = s.str()
		case "error":
			s.jsonError(f)
		default:
			s.value(0)
		}
	})
	s.space()
	if s.bad || s.i != len(s.b) {
		return errFrame
	}
	return nil
}

// jsonScanner walks JSON text; after the first problem bad is set.
type jsonScanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *jsonScanner) peek() byte {
	s.space()
	if s.bad || s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) expect(c byte) {
	if s.peek() != c {
		s.bad = true
		return
	}
	s.i++
}

// object calls member for each key, with the scanner before its value.
func (s *jsonScanner) object(member func(key []byte)) {
	s.expect('{')
	if s.peek() == '}' {
		s.i++
		return
	}
	for !s.bad {
		key := s.str()
		s.expect(':')
		if s.bad {
			return
		}
		member(key)
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return
		default:
			s.bad = true
		}
	}
}

// str reads a string and returns its contents. Escapes are left as they
// are: the fields read this way (type, channel, b64) need none, so a
// backslash there fails the comparison or the base64 decoding downstream.
func (s *jsonScanner) str() []byte {
	if s.peek() != '"' {
		s.bad = true
		return nil
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			j++
		case '"':
			s.i = j + 1
			return s.b[start:j]
		}
	}
	s.bad = true
	return nil
}

// uint reads a non-negative integer.
func (s *jsonScanner) uint() uint64 {
	s.space()
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || s.i-start > 20 {
		s.bad = true
	}
	return v
}

// value steps over any value and returns its text.
func (s *jsonScanner) value(depth int) []byte {
	if depth > maxSkipDepth {
		s.bad = true
		return nil
	}
	c := s.peek()
	start := s.i
	switch {
	case c == '"':
		s.str()
	case c == '{':
		s.object(func([]byte) { s.value(depth + 1) })
	case c == '[':
		s.array(depth)
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		for s.i < len(s.b) && strings.IndexByte(",}] \t\r\n", s.b[s.i]) < 0 {
			s.i++
		}
	default:
		s.bad = true
	}
	if s.bad {
		return nil
	}
	return s.b[start:s.i]
}

func (s *jsonScanner) array(depth int) {
	s.expect('[')
	if s.peek() == ']' {
		s.i++
		return
	}
	for !s.bad {
		s.value(depth + 1)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return
		default:
			s.bad = true
		}
	}
}

// jsonError reads an error reply's {"code","message"} object.
func (s *jsonScanner) jsonError(f *serverFrame) {
	s.object(func(key []byte) {
		switch string(key) {
		case "code":
			f.errCode = uint32(s.uint())
		case "message":
			f.errMsg = s.str()
		default:
			s.value(1)
		}
	})
}
