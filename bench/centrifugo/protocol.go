package centrifugo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/bench/harness/wire"
)

// Centrifugo's JSON client protocol (v2), as far as the benchmark uses it.
//
// A client sends commands {"id":N,"connect":{}} and
// {"id":N,"subscribe":{"channel":"ns:name"}}; several may share one
// WebSocket message, separated by newlines, and are processed in order.
// The server sends frames of three shapes, and batches up to 16 queued
// frames into one message separated by newlines:
//
//	{"id":N,"connect":{...}}                      a reply (or "subscribe", ...)
//	{"id":N,"error":{"code":103,"message":"..."}} a refused command
//	{"push":{"channel":"ns:name","pub":{"data":<JSON>}}} a publication
//	{}                                            a ping: answer {} (a pong)
//
// Publication data is JSON (the default publication_data_format), so the
// stamp travels as a JSON string: see NewData.

// Namespace is the channel namespace the benchmark's channels live in; the
// configuration allows anonymous subscribers there and nowhere else.
const Namespace = "bench"

// Channel maps a harness channel name into the benchmark namespace.
func Channel(name string) string { return Namespace + ":" + name }

// Pong is the answer to a ping frame.
var Pong = []byte("{}")

// ConnectCommand returns an anonymous connect command (no token).
func ConnectCommand(id uint32) []byte {
	return fmt.Appendf(nil, `{"id":%d,"connect":{}}`, id)
}

// SubscribeCommand returns a subscribe command for the harness channel
// name (mapped into Namespace).
func SubscribeCommand(id uint32, name string) []byte {
	ch, _ := json.Marshal(Channel(name)) // a string always marshals
	return fmt.Appendf(nil, `{"id":%d,"subscribe":{"channel":%s}}`, id, ch)
}

// Batch joins commands into one message, as the protocol allows.
func Batch(commands ...[]byte) []byte { return bytes.Join(commands, []byte("\n")) }

// Frame is one server frame. Byte slices alias the message it came from.
type Frame struct {
	// ID is a reply's id; 0 for pushes and pings.
	ID uint32
	// Result is a reply's result key ("connect", "subscribe", ...); empty
	// for an error reply.
	Result []byte
	// ErrorCode is an error reply's code; HasError tells an error apart
	// from code 0.
	ErrorCode uint32
	HasError  bool
	// Push is a push's kind ("pub", "join", "unsubscribe", ...), Channel
	// its channel and Data a publication's data, raw JSON.
	Push    []byte
	Channel []byte
	Data    []byte
}

// IsPing reports whether f is the empty frame: a ping.
func (f *Frame) IsPing() bool {
	return f.ID == 0 && !f.HasError && f.Result == nil && f.Push == nil
}

// IsPublication reports whether f is a publication pushed to a subscriber.
func (f *Frame) IsPublication() bool { return string(f.Push) == "pub" }

// IsReply reports whether f answers a command.
func (f *Frame) IsReply() bool { return f.ID != 0 }

// Split calls fn for every frame of a server message: its lines, empty
// ones skipped.
func Split(msg []byte, fn func(frame []byte)) {
	for len(msg) > 0 {
		line, rest, _ := bytes.Cut(msg, []byte("\n"))
		if len(bytes.TrimSpace(line)) > 0 {
			fn(line)
		}
		msg = rest
	}
}

// ParseFrame reads one frame. It is a small scanner, not a JSON decoder:
// a benchmark client reads millions of frames and needs four fields of
// them. It accepts exactly the JSON grammar (unknown keys and values of
// any type are skipped) and allocates nothing.
func ParseFrame(b []byte) (Frame, error) {
	var f Frame
	s := scanner{b: b}
	err := s.object(0, func(key []byte) error {
		switch string(key) {
		case "id":
			id, err := s.uint32()
			f.ID = id
			return err
		case "error":
			f.HasError = true
			return s.object(1, func(k []byte) error {
				if string(k) == "code" {
					c, err := s.uint32()
					f.ErrorCode = c
					return err
				}
				return s.skip(2)
			})
		case "push":
			return s.object(1, func(k []byte) error {
				if string(k) == "channel" {
					c, err := s.str()
					f.Channel = c
					return err
				}
				f.Push = k
				if string(k) != "pub" {
					return s.skip(2)
				}
				return s.object(2, func(k []byte) error {
					if string(k) != "data" {
						return s.skip(3)
					}
					start := s.pos()
					err := s.skip(3)
					f.Data = b[start:s.pos()]
					return err
				})
			})
		default:
			f.Result = key
			return s.skip(1)
		}
	})
	if err != nil {
		return Frame{}, err
	}
	if s.ws(); s.off != len(b) {
		return Frame{}, fmt.Errorf("centrifugo: %d bytes after the frame", len(b)-s.off)
	}
	if f.HasError {
		f.Result = nil
	}
	return f, nil
}

// The stamped payload.

// stampChars is the base64 (URL alphabet, no padding) of wire's 16-byte
// stamp.
const stampChars = 22

// MinDataBytes is the smallest payload: the stamp in a JSON string.
const MinDataBytes = stampChars + 2

// NewData returns publication data of size bytes (at least MinDataBytes):
// a JSON string whose first 22 characters will hold the stamp, padded
// with 'x'.
func NewData(size int) []byte {
	b := bytes.Repeat([]byte{'x'}, max(size, MinDataBytes))
	b[0], b[len(b)-1] = '"', '"'
	return b
}

// Stamp writes seq and the send time into data (made by NewData).
func Stamp(data []byte, seq uint64, sent time.Time) {
	var raw [16]byte
	wire.Stamp(raw[:], seq, sent)
	base64.RawURLEncoding.Encode(data[1:1+stampChars], raw[:])
}

// ParseStamp reads what Stamp wrote from a publication's raw JSON data.
func ParseStamp(data []byte) (seq uint64, sent time.Time, ok bool) {
	if len(data) < MinDataBytes || data[0] != '"' {
		return 0, time.Time{}, false
	}
	var raw [16]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], data[1:1+stampChars]); err != nil || n != len(raw) {
		return 0, time.Time{}, false
	}
	return wire.ParseStamp(raw[:])
}

// The scanner.

// maxDepth bounds nesting while skipping values.
const maxDepth = 32

var errShort = errors.New("centrifugo: truncated JSON")

type scanner struct {
	b   []byte
	off int
}

func (s *scanner) pos() int { return s.off }

func (s *scanner) ws() {
	for s.off < len(s.b) {
		switch s.b[s.off] {
		case ' ', '\t', '\r', '\n':
			s.off++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.off >= len(s.b) {
		return 0
	}
	return s.b[s.off]
}

func (s *scanner) expect(c byte) error {
	if got := s.peek(); got != c {
		if got == 0 {
			return errShort
		}
		return fmt.Errorf("centrifugo: want %q at %d, got %q", c, s.off, got)
	}
	s.off++
	return nil
}

// object reads an object, calling value for every key; value must consume
// the key's value.
func (s *scanner) object(depth int, value func(key []byte) error) error {
	if depth > maxDepth {
		return errors.New("centrifugo: JSON nested too deep")
	}
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.off++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := value(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.off++
		case '}':
			s.off++
			return nil
		case 0:
			return errShort
		default:
			return fmt.Errorf("centrifugo: want , or } at %d", s.off)
		}
	}
}

// str reads a string and returns its raw contents (escapes not decoded:
// the keys and channel names the harness compares have none).
func (s *scanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.off
	for s.off < len(s.b) {
		c := s.b[s.off]
		switch {
		case c == '"':
			s.off++
			return s.b[start : s.off-1], nil
		case c == '\\':
			if err := s.escape(); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, fmt.Errorf("centrifugo: control character in string at %d", s.off)
		default:
			s.off++
		}
	}
	return nil, errShort
}

// escape steps over one escape sequence at s.off.
func (s *scanner) escape() error {
	if s.off+1 >= len(s.b) {
		return errShort
	}
	switch s.b[s.off+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.off += 2
		return nil
	case 'u':
		if s.off+6 > len(s.b) {
			return errShort
		}
		for _, h := range s.b[s.off+2 : s.off+6] {
			if !isHex(h) {
				return fmt.Errorf("centrifugo: bad \\u escape at %d", s.off)
			}
		}
		s.off += 6
		return nil
	}
	return fmt.Errorf("centrifugo: bad escape at %d", s.off)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// uint32 reads a non-negative integer that fits 32 bits.
func (s *scanner) uint32() (uint32, error) {
	s.ws()
	start := s.off
	var v uint64
	for s.off < len(s.b) && '0' <= s.b[s.off] && s.b[s.off] <= '9' {
		v = v*10 + uint64(s.b[s.off]-'0')
		if v > 1<<32-1 {
			return 0, fmt.Errorf("centrifugo: integer out of range at %d", start)
		}
		s.off++
	}
	switch n := s.off - start; {
	case n == 0:
		return 0, fmt.Errorf("centrifugo: want an unsigned integer at %d", start)
	case n > 1 && s.b[start] == '0':
		return 0, fmt.Errorf("centrifugo: leading zero at %d", start)
	}
	return uint32(v), nil
}

// skip steps over one value of any type.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return errors.New("centrifugo: JSON nested too deep")
	}
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth+1, func([]byte) error { return s.skip(depth + 1) })
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == 0:
		return errShort
	default:
		return fmt.Errorf("centrifugo: unexpected %q at %d", c, s.off)
	}
}

func (s *scanner) array(depth int) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.off++
		return nil
	}
	for {
		if err := s.skip(depth); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.off++
		case ']':
			s.off++
			return nil
		case 0:
			return errShort
		default:
			return fmt.Errorf("centrifugo: want , or ] at %d", s.off)
		}
	}
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.b[s.off:], []byte(word)) {
		return fmt.Errorf("centrifugo: bad literal at %d", s.off)
	}
	s.off += len(word)
	return nil
}

// number steps over a JSON number: -?int frac? exp?
func (s *scanner) number() error {
	start := s.off
	if s.b[s.off] == '-' {
		s.off++
	}
	digits := func() int {
		n := 0
		for s.off < len(s.b) && '0' <= s.b[s.off] && s.b[s.off] <= '9' {
			s.off++
			n++
		}
		return n
	}
	intStart := s.off
	switch n := digits(); {
	case n == 0:
		return fmt.Errorf("centrifugo: bad number at %d", start)
	case n > 1 && s.b[intStart] == '0':
		return fmt.Errorf("centrifugo: leading zero at %d", start)
	}
	if s.off < len(s.b) && s.b[s.off] == '.' {
		s.off++
		if digits() == 0 {
			return fmt.Errorf("centrifugo: bad fraction at %d", start)
		}
	}
	if s.off < len(s.b) && (s.b[s.off] == 'e' || s.b[s.off] == 'E') {
		s.off++
		if s.off < len(s.b) && (s.b[s.off] == '+' || s.b[s.off] == '-') {
			s.off++
		}
		if digits() == 0 {
			return fmt.Errorf("centrifugo: bad exponent at %d", start)
		}
	}
	return nil
}
