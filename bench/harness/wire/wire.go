// Package wire is what wsbench says and hears on the client protocol: the
// subscribe and publish commands (MessagePack, the default encoding) and
// the timestamped payload that publish→delivery latency is measured with.
// Pushes are read with a tiny MessagePack walker rather than a full
// decoder: a benchmark client decodes millions of frames and needs only
// "type", "id", "error" and "data" (the resume scenario also a message's
// or a reply's channel position).
package wire

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/codec"
)

// PushBytes is the size of the message push a fan-out delivers (before
// the 2-byte WebSocket header): "80-byte messages" means the frame's
// payload, whatever the channel name, as long as the channel offset fits
// a positive fixint (later offsets add 1–2 bytes).
//
// It was 64 until message pushes carried their epoch (15 more bytes in
// MessagePack): the payload stayed the same, the push grew.
const PushBytes = 80

// TypicalEpoch stands for a channel's epoch in pushes whose size matters
// (the embedded broker's epochs are 8 hex digits), so that an "80-byte push"
// is 80 bytes with the epoch every message push carries.
const TypicalEpoch = "0a1b2c3d"

// stampBytes is the stamp at the start of every published payload:
// sequence number and send time.
const stampBytes = 16

// DataBytes returns the publish payload size that makes a message push on
// channel exactly PushBytes long (at an offset below 128), and never less
// than the stamp.
func DataBytes(channel string) int {
	overhead := len(codec.AppendMessage(nil, codec.Msgpack, channel, 1, TypicalEpoch, []byte{}))
	return max(PushBytes-overhead, stampBytes)
}

// NewData returns a payload of size bytes (at least the stamp's 16) whose
// padding is printable, so a JSON client could carry it too.
func NewData(size int) []byte {
	b := make([]byte, max(size, stampBytes))
	for i := stampBytes; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

// Document is the compressible payload of the compression benchmarks
// (fanout --compression): an order-update event of about 1.5 KB of JSON,
// the kind of document a gateway fans out. NewDocumentData puts the stamp
// in front of it.
//
//go:embed document.json
var Document []byte

// NewDocumentData returns a payload of the stamp followed by Document.
func NewDocumentData() []byte {
	b := make([]byte, stampBytes, stampBytes+len(Document))
	return append(b, Document...)
}

// Stamp writes seq and the send time (Unix nanoseconds: the wall clock is
// shared by every process on the host, so the floor helper can stamp too)
// into data's first 16 bytes.
func Stamp(data []byte, seq uint64, sent time.Time) {
	binary.BigEndian.PutUint64(data[0:8], seq)
	binary.BigEndian.PutUint64(data[8:16], uint64(sent.UnixNano()))
}

// ParseStamp reads what Stamp wrote.
func ParseStamp(data []byte) (seq uint64, sent time.Time, ok bool) {
	if len(data) < stampBytes {
		return 0, time.Time{}, false
	}
	seq = binary.BigEndian.Uint64(data[0:8])
	return seq, time.Unix(0, int64(binary.BigEndian.Uint64(data[8:16]))), true
}

// Subscribe returns a subscribe command for channel.
func Subscribe(id uint32, channel string) []byte {
	return mustCommand(&codec.Command{ID: id, Cmd: codec.CmdSubscribe, Channel: []byte(channel)})
}

// Publish returns a publish command for data on channel; id 0 asks for no
// reply (a server may still answer errors).
func Publish(id uint32, channel string, data []byte) []byte {
	return mustCommand(&codec.Command{ID: id, Cmd: codec.CmdPublish, Channel: []byte(channel), Data: data})
}

func mustCommand(c *codec.Command) []byte {
	b, err := codec.AppendCommand(nil, codec.Msgpack, c)
	if err != nil {
		// Only JSON data or a negative limit can fail; neither is used here.
		panic(fmt.Sprintf("wire: encode %v: %v", c.Cmd, err))
	}
	return b
}

// Push is what ParsePush extracts from a server frame. Byte slices alias
// the frame.
type Push struct {
	Type     []byte // "reply", "message", ...
	ID       uint64 // a reply's id
	HasError bool   // a reply carrying "error"
	// ErrorCode and ErrorMessage are the error's "code" and "message"
	// (zero when absent or not in that shape).
	ErrorCode    uint64
	ErrorMessage []byte
	Data         []byte // a message's data (bin or str; JSON: the raw value)
	B64          []byte // JSON only: a message's data in base64
	// From and To: the offsets a gap push says were lost.
	From, To uint64
	// Channel, Offset and Epoch: a message's, or a subscribe reply's
	// position (resume); Recovered (set when HasRecovered) and Reason
	// answer a subscribe that asked to resume.
	Channel      []byte
	Offset       uint64
	Epoch        []byte
	Recovered    bool
	HasRecovered bool
	Reason       []byte
}

// IsMessage reports whether p is a message push.
func (p *Push) IsMessage() bool { return string(p.Type) == codec.TypeMessage }

// IsGap reports whether p announces lost publications.
func (p *Push) IsGap() bool { return string(p.Type) == codec.TypeGap }

// IsReply reports whether p is a reply.
func (p *Push) IsReply() bool { return string(p.Type) == codec.TypeReply }

// maxDepth bounds nesting while skipping unknown values.
const maxDepth = 16

var errShort = errors.New("wire: truncated msgpack")

// ParsePush reads a MessagePack server frame (a map with string keys, in
// any order, unknown ones skipped, integers of any width), the encoding
// every harness client but the pub/sub check's JSON ones uses.
func ParsePush(b []byte) (Push, error) {
	var p Push
	r := reader{b: b}
	n, err := r.mapLen()
	if err != nil {
		return p, err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return p, fmt.Errorf("wire: key: %w", err)
		}
		switch string(key) {
		case "type":
			p.Type, err = r.str()
		case "id":
			p.ID, err = r.uint()
		case "data":
			p.Data, err = r.bytes()
		case "channel":
			p.Channel, err = r.str()
		case "offset":
			p.Offset, err = r.uint()
		case "epoch":
			p.Epoch, err = r.str()
		case "reason":
			p.Reason, err = r.str()
		case "from":
			p.From, err = r.uint()
		case "to":
			p.To, err = r.uint()
		case "recovered":
			p.HasRecovered = true
			p.Recovered, err = r.bool()
		case "error":
			p.HasError = true
			err = r.errorValue(&p)
		default:
			err = r.skip(0)
		}
		if err != nil {
			return p, fmt.Errorf("wire: value of %q: %w", key, err)
		}
	}
	if r.off != len(b) {
		return p, errors.New("wire: bytes after the frame")
	}
	return p, nil
}

// errorValue reads an error object ({"code": n, "message": s}); any other
// value is skipped.
func (r *reader) errorValue(p *Push) error {
	if r.off < len(r.b) {
		if c := r.b[r.off]; c&0xf0 != 0x80 && c != 0xde && c != 0xdf {
			return r.skip(0)
		}
	}
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return err
		}
		switch string(key) {
		case "code":
			p.ErrorCode, err = r.uint()
		case "message":
			p.ErrorMessage, err = r.str()
		default:
			err = r.skip(1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) byte1() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, errShort
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

// be reads an n-byte big-endian unsigned integer.
func (r *reader) be(n int) (uint64, error) {
	s, err := r.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range s {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (r *reader) mapLen() (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), nil
	case c == 0xde:
		v, err := r.be(2)
		return int(v), err
	case c == 0xdf:
		v, err := r.be(4)
		return int(v), err
	}
	return 0, fmt.Errorf("wire: not a map (0x%02x)", c)
}

// str reads a str (or bin) value.
func (r *reader) str() ([]byte, error) { return r.bytes() }

// bytes reads a str or bin value.
func (r *reader) bytes() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		n, err = r.be(1)
	case c == 0xda || c == 0xc5:
		n, err = r.be(2)
	case c == 0xdb || c == 0xc6:
		n, err = r.be(4)
	case c == 0xc0: // nil reads as empty
		return nil, nil
	default:
		return nil, fmt.Errorf("wire: not str or bin (0x%02x)", c)
	}
	if err != nil {
		return nil, err
	}
	return r.take(int(n))
}

func (r *reader) uint() (uint64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c >= 0xcc && c <= 0xcf: // uint8 … uint64
		return r.be(1 << (c - 0xcc))
	case c >= 0xd0 && c <= 0xd3: // int8 … int64, non-negative only
		v, err := r.be(1 << (c - 0xd0))
		if err != nil {
			return 0, err
		}
		if bits := 8 << (c - 0xd0); v>>(bits-1) != 0 {
			return 0, errors.New("wire: negative integer")
		}
		return v, nil
	}
	return 0, fmt.Errorf("wire: not an integer (0x%02x)", c)
}

func (r *reader) bool() (bool, error) {
	c, err := r.byte1()
	switch {
	case err != nil:
		return false, err
	case c == 0xc2 || c == 0xc3:
		return c == 0xc3, nil
	}
	return false, fmt.Errorf("wire: not a bool (0x%02x)", c)
}

// skip steps over one value of any type.
func (r *reader) skip(depth int) error {
	if depth > maxDepth {
		return errors.New("wire: nested too deep")
	}
	c, err := r.byte1()
	if err != nil {
		return err
	}
	var n uint64 // bytes to skip, or elements for containers
	elems := 0   // 1: array elements, 2: map pairs
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c&0xf0 == 0x80:
		n, elems = uint64(c&0x0f), 2
	case c&0xf0 == 0x90:
		n, elems = uint64(c&0x0f), 1
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xc4 || c == 0xd9:
		n, err = r.be(1)
	case c == 0xc5 || c == 0xda:
		n, err = r.be(2)
	case c == 0xc6 || c == 0xdb:
		n, err = r.be(4)
	case c == 0xca:
		n = 4
	case c == 0xcb:
		n = 8
	case c >= 0xcc && c <= 0xcf:
		n = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3:
		n = 1 << (c - 0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext 1…16: type byte + data
		n = 1 + 1<<(c-0xd4)
	case c >= 0xc7 && c <= 0xc9: // ext 8/16/32: length, type byte, data
		n, err = r.be(1 << (c - 0xc7))
		n++
	case c == 0xdc:
		n, err = r.be(2)
		elems = 1
	case c == 0xdd:
		n, err = r.be(4)
		elems = 1
	case c == 0xde:
		n, err = r.be(2)
		elems = 2
	case c == 0xdf:
		n, err = r.be(4)
		elems = 2
	default:
		return fmt.Errorf("wire: unknown type byte 0x%02x", c)
	}
	if err != nil {
		return err
	}
	if elems == 0 {
		_, err = r.take(int(n))
		return err
	}
	if n > uint64(len(r.b)-r.off) { // every element takes at least a byte
		return errShort
	}
	for range n * uint64(elems) {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
