package codec

import (
	"fmt"
	"strconv"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// EnvelopeVersion is the broker envelope version this package reads and
// writes ("v").
const EnvelopeVersion = 1

// Kind says what an envelope carries: a publication (the zero value) or a
// presence event. Events have no offset, never enter history and are
// pushed to subscribers as join / leave frames, not as messages.
type Kind uint8

// Envelope kinds ("t": absent for a publication, "join" or "leave").
const (
	KindPublication Kind = iota
	KindJoin             // a client joined the channel ("t":"join")
	KindLeave            // a client left the channel ("t":"leave")
	// KindGap is internal to a gateway (never in an envelope): a notice
	// that publications were lost, queued to subscribers like an event.
	KindGap
	// KindEpoch is internal to a gateway too: a notice that a channel's
	// epoch changed (its history was lost).
	KindEpoch
)

// String returns the kind's "t" value ("" for a publication).
func (k Kind) String() string {
	switch k {
	case KindJoin:
		return TypeJoin
	case KindLeave:
		return TypeLeave
	case KindPublication:
		return ""
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsEvent reports whether k is a presence event (join or leave).
func (k Kind) IsEvent() bool { return k == KindJoin || k == KindLeave }

// Publication is the broker envelope: one publication travelling between
// gateway instances, or written by a backend, as a MessagePack map
//
//	{"v":1, "ch":str, "data":bin, "off":uint, "ep":str, "node":str, "ts":int}
//
// or a join / leave event of the channel's presence
//
//	{"v":1, "ch":str, "t":"join"|"leave", "cl":str, "u":str, "node":str, "ts":int}
//
// After DecodePublication, Channel, Data, Epoch, Node, Client and User
// alias the input buffer (zero copy): copy what must outlive it.
type Publication struct {
	Channel []byte // "ch", required
	Data    []byte // "data": opaque payload (bin; str accepted)
	Offset  uint64 // "off": position in the channel's history; 0 = none assigned
	Epoch   []byte // "ep": the history stream's epoch; offsets compare only within one
	Node    []byte // "node": id of the gateway instance (or backend) that published
	Time    int64  // "ts": publish time, Unix milliseconds; 0 = unknown
	Kind    Kind   // "t": absent = a publication; "join" / "leave" = a presence event
	Client  []byte // "cl": the client that joined or left (required for events)
	User    []byte // "u": that client's user id ("" for anonymous)
}

// EncodePublication returns p's envelope.
func EncodePublication(p Publication) ([]byte, error) {
	return AppendPublication(nil, p)
}

// AppendPublication appends p's envelope to dst. "v" and "ch" are always
// written, "data" always for a publication (for an event only when not
// empty); "off", "ep", "node", "ts", "t", "cl" and "u" only when not zero,
// to keep the broker traffic small.
//
// It uses vmihailenco/msgpack's streaming encoder: encoding with the
// library is safe (its trap is in decoding untrusted input).
func AppendPublication(dst []byte, p Publication) ([]byte, error) {
	w := &appendWriter{b: dst}
	e := envEncoder{enc: msgpack.GetEncoder()}
	defer msgpack.PutEncoder(e.enc)
	e.enc.Reset(w) // also clears flags: no string interning, see str
	if p.Kind != KindPublication && !p.Kind.IsEvent() {
		return dst, fmt.Errorf("codec: encode publication: %w", ErrKind)
	}
	withData := p.Kind == KindPublication || len(p.Data) > 0
	fields := 2 + count(withData, p.Offset != 0, len(p.Epoch) > 0, len(p.Node) > 0, p.Time != 0,
		p.Kind != KindPublication, len(p.Client) > 0, len(p.User) > 0)
	e.err = e.enc.EncodeMapLen(fields)
	e.uint("v", EnvelopeVersion)
	e.str("ch", p.Channel)
	if p.Kind != KindPublication {
		e.text("t", p.Kind.String())
	}
	if len(p.Client) > 0 {
		e.str("cl", p.Client)
	}
	if len(p.User) > 0 {
		e.str("u", p.User)
	}
	if withData {
		e.bytes("data", p.Data)
	}
	if p.Offset != 0 {
		e.uint("off", p.Offset)
	}
	if len(p.Epoch) > 0 {
		e.str("ep", p.Epoch)
	}
	if len(p.Node) > 0 {
		e.str("node", p.Node)
	}
	if p.Time != 0 {
		e.int("ts", p.Time)
	}
	if e.err != nil {
		return dst, fmt.Errorf("codec: encode publication: %w", e.err)
	}
	return w.b, nil
}

// envEncoder keeps the first error so the field sequence reads straight.
type envEncoder struct {
	enc *msgpack.Encoder
	err error
}

func (e *envEncoder) key(k string) bool {
	if e.err == nil {
		e.err = e.enc.EncodeString(k)
	}
	return e.err == nil
}

// str writes v as a MessagePack str. The string view shares v's memory
// instead of copying it: the encoder (without interning, which Reset turned
// off) only reads it during the call.
func (e *envEncoder) str(k string, v []byte) {
	if e.key(k) {
		e.err = e.enc.EncodeString(unsafe.String(unsafe.SliceData(v), len(v)))
	}
}

func (e *envEncoder) text(k, v string) {
	if e.key(k) {
		e.err = e.enc.EncodeString(v)
	}
}

// bytes writes a bin; nil is written as empty bin, not as nil (the
// library's EncodeBytes(nil) writes nil).
func (e *envEncoder) bytes(k string, v []byte) {
	if v == nil {
		v = []byte{}
	}
	if e.key(k) {
		e.err = e.enc.EncodeBytes(v)
	}
}

func (e *envEncoder) uint(k string, v uint64) {
	if e.key(k) {
		e.err = e.enc.EncodeUint(v)
	}
}

func (e *envEncoder) int(k string, v int64) {
	if e.key(k) {
		e.err = e.enc.EncodeInt(v)
	}
}

// appendWriter is the encoder's sink: it appends to a caller's slice. It
// implements io.ByteWriter so the library does not wrap it in a buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// DecodePublication decodes an envelope into p (overwritten entirely).
// The input is untrusted (anything that can write to the broker can
// produce it): it is decoded field by field with every length checked, no
// library decoding into maps or slices. Unknown keys are skipped; nil
// values count as absent; a repeated key's last value wins. "v" must be
// present and equal EnvelopeVersion, "ch" must be present and not empty;
// "t", when present, must be "join" or "leave" (ErrKind otherwise, so an
// event kind this version does not know never reaches clients as a
// message), and an event must name its client ("cl"). The slices in p
// alias b.
func DecodePublication(b []byte, p *Publication) error {
	*p = Publication{}
	r := mpReader{b: b}
	n, err := r.mapStart()
	if err != nil {
		return fmt.Errorf("codec: publication: %w", err)
	}
	var version uint64
	var hasVersion bool
	for ; n > 0; n-- {
		k, err := r.key()
		if err != nil {
			return fmt.Errorf("codec: publication: %w", err)
		}
		v, err := r.value()
		if err != nil {
			return fmt.Errorf("codec: publication: %w", err)
		}
		if string(k) == "v" {
			version, hasVersion, err = mpUintVal(v, ^uint64(0))
		} else {
			err = setEnvelopeField(p, k, v)
		}
		if err != nil {
			return fmt.Errorf("codec: publication field %q: %w", clip(k), err)
		}
	}
	if r.rest() != 0 {
		return fmt.Errorf("codec: publication: %w", ErrTrailing)
	}
	switch {
	case !hasVersion:
		return fmt.Errorf("codec: publication field \"v\": %w", ErrMissing)
	case version != EnvelopeVersion:
		return fmt.Errorf("codec: publication: %w %d", ErrVersion, version)
	case len(p.Channel) == 0:
		return fmt.Errorf("codec: publication field \"ch\": %w", ErrMissing)
	case p.Kind.IsEvent() && len(p.Client) == 0:
		return fmt.Errorf("codec: publication field \"cl\": %w", ErrMissing)
	}
	return nil
}

func setEnvelopeField(p *Publication, k []byte, v mpHead) (err error) {
	switch string(k) {
	case "ch":
		p.Channel, _, err = mpStrVal(v)
	case "data":
		p.Data, _, err = mpBytesVal(v)
	case "off":
		p.Offset, _, err = mpUintVal(v, ^uint64(0))
	case "ep":
		p.Epoch, _, err = mpStrVal(v)
	case "node":
		p.Node, _, err = mpStrVal(v)
	case "ts":
		p.Time, _, err = mpIntVal(v)
	case "t":
		var t []byte
		var present bool
		if t, present, err = mpStrVal(v); err == nil {
			p.Kind, err = parseKind(t, present)
		}
	case "cl":
		p.Client, _, err = mpStrVal(v)
	case "u":
		p.User, _, err = mpStrVal(v)
	}
	return err
}

// parseKind reads "t": absent (or nil) is a publication.
func parseKind(t []byte, present bool) (Kind, error) {
	switch {
	case !present:
		return KindPublication, nil
	case string(t) == TypeJoin:
		return KindJoin, nil
	case string(t) == TypeLeave:
		return KindLeave, nil
	}
	return KindPublication, ErrKind
}

// clip bounds how much of an untrusted key goes into an error message.
func clip(k []byte) []byte {
	const max = 32
	if len(k) > max {
		return k[:max]
	}
	return k
}
