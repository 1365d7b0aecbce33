package wire

import (
	"errors"
	"strings"
)

// The JSON push reader: small and allocation-free like the MessagePack
// one, not hardened (the server is trusted), yet it never panics on bad
// input and accepts any key order and unknown keys.

// ParsePushJSON reads a JSON server frame (an object), the encoding
// browsers and the JSON clients of the pub/sub check use: a message's
// data arrives raw in Data (a JSON value) or base64 in B64.
func ParsePushJSON(b []byte) (Push, error) {
	var p Push
	s := jsonScanner{b: b}
	s.object(func(key []byte) {
		switch string(key) {
		case "type":
			p.Type = s.str()
		case "id":
			p.ID = s.uint()
		case "channel":
			p.Channel = s.str()
		case "offset":
			p.Offset = s.uint()
		case "epoch":
			p.Epoch = s.str()
		case "from":
			p.From = s.uint()
		case "to":
			p.To = s.uint()
		case "data":
			p.Data = s.value(0)
		case "b64":
			p.B64 = s.str()
		case "error":
			p.HasError = true
			s.jsonError(&p)
		default:
			s.value(0)
		}
	})
	s.space()
	if s.bad || s.i != len(s.b) {
		return p, errJSON
	}
	return p, nil
}

var errJSON = errors.New("wire: malformed JSON server frame")

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
	if depth > maxDepth {
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
func (s *jsonScanner) jsonError(p *Push) {
	s.object(func(key []byte) {
		switch string(key) {
		case "code":
			p.ErrorCode = s.uint()
		case "message":
			p.ErrorMessage = s.str()
		default:
			s.value(1)
		}
	})
}
