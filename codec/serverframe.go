package codec

import (
	"fmt"
	"math"
)

// FrameType classifies a server frame by its "type" key.
type FrameType uint8

// Server frame types. FrameUnknown is a type this package does not know: a
// newer server's push, which a client should ignore (codec/README.md §2:
// new things are added, never changed).
const (
	FrameUnknown FrameType = iota
	FrameReply
	FrameMessage
	FrameJoin
	FrameLeave
	FrameRefresh
	FrameGap
	FrameEpoch
	FrameUnsubscribe
)

// String returns the wire name ("reply", "message", …) or "unknown".
func (t FrameType) String() string {
	switch t {
	case FrameReply:
		return "reply"
	case FrameMessage:
		return "message"
	case FrameJoin:
		return "join"
	case FrameLeave:
		return "leave"
	case FrameRefresh:
		return "refresh"
	case FrameGap:
		return "gap"
	case FrameEpoch:
		return "epoch"
	case FrameUnsubscribe:
		return "unsubscribe"
	}
	return "unknown"
}

func parseFrameType(name []byte) FrameType {
	switch string(name) {
	case "reply":
		return FrameReply
	case "message":
		return FrameMessage
	case "join":
		return FrameJoin
	case "leave":
		return FrameLeave
	case "refresh":
		return FrameRefresh
	case "gap":
		return FrameGap
	case "epoch":
		return FrameEpoch
	case "unsubscribe":
		return FrameUnsubscribe
	}
	return FrameUnknown
}

// ServerFrame is one decoded server frame: a reply or a push. Which fields
// mean something depends on Type (and, for replies, on the command the ID
// answers); see codec/README.md §4 and §5.
//
// Byte slices alias the frame given to DecodeServerFrame or the
// ServerFrame's own scratch memory (JSON strings written with escapes,
// base64-decoded payloads). They are valid until the frame's buffer is
// reused or the ServerFrame is decoded into again: copy what must outlive
// that. Presence entries (Clients) are copied into strings.
type ServerFrame struct {
	Type     FrameType
	TypeName []byte // the "type" as sent (useful when Type is FrameUnknown)

	// Replies.
	ID         uint32
	ErrCode    ErrorCode // != 0: an error reply ("error":{"code","message"})
	ErrMessage []byte

	// Channel: message, join, leave, gap, epoch, unsubscribe.
	Channel []byte
	// Offset: message (its position), subscribe and publish replies, epoch
	// push (the last offset of the previous epoch sent to this client).
	Offset    uint64
	HasOffset bool
	// Epoch: message, subscribe/publish/history replies, epoch push (the
	// new epoch). Previous: epoch push (the lost one).
	Epoch    []byte
	Previous []byte
	// Data: message, the published bytes (JSON "b64" already decoded;
	// JSON "data" is the value's exact text).
	Data    []byte
	HasData bool

	// Subscribe reply to a resume: HasRecovered is true and Recovered says
	// whether everything missed will be delivered; Reason says why not.
	Recovered    bool
	HasRecovered bool
	Reason       []byte
	// Publish reply: the idempotency key had already published it.
	Replayed bool

	// Gap push: publications From..To are lost.
	From, To uint64
	// Join / leave push.
	Client, User []byte

	// History reply (HasPublications), presence reply (HasClients: the
	// "clients" array) and presence_stats reply (HasStats: "clients" and
	// "users" counts).
	Publications    []HistoryPublication
	HasPublications bool
	Clients         []ClientInfo
	HasClients      bool
	NumClients      uint64
	NumUsers        uint64
	HasStats        bool

	scratch []byte // unescaped strings and decoded base64 of this frame
	walk    struct {
		mp mpWalker
		js jsonWalker
	} // kept here so that decoding a message allocates nothing
}

// frameState carries what decoding learned beyond the frame's fields.
type frameState struct {
	hasType, hasChannel, hasFrom, hasTo, hasEpoch bool
	hasData, hasB64                               bool // JSON may carry either, never both
	typeErr                                       error
	fieldErr                                      error
	fieldName                                     string
}

func (st *frameState) fail(field string, err error) {
	if st.fieldErr == nil {
		st.fieldErr, st.fieldName = err, field
	}
}

// FrameError is the error DecodeServerFrame returns. Field names the key
// involved ("" for a structural problem); Err is one of the sentinel
// errors (ErrTruncated, ErrType, ErrMissing, …), possibly wrapped.
type FrameError struct {
	Field string
	Err   error
}

func (e *FrameError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("codec: server frame: field %q: %v", e.Field, e.Err)
	}
	return "codec: server frame: " + e.Err.Error()
}

func (e *FrameError) Unwrap() error { return e.Err }

// DecodeServerFrame decodes one server frame into f (overwritten; its
// slices' memory is reused). It is the client side's decoder of untrusted
// bytes: hand-written, bounded by the frame (no allocation larger than a
// small multiple of len(frame), no recursion), and it never panics.
//
// The rules are those of codec/README.md §2: keys in any order, unknown
// keys skipped, nil the same as absent, any integer width, the last of a
// repeated key wins. A frame of an unknown type decodes without error as
// FrameUnknown (its known keys are not checked: a newer push may use them
// differently). For known types a field of the wrong type, a missing
// required field (channel of a channel push; from and to of a gap; epoch of an
// epoch push; code of an error) or a value out of range fails.
func DecodeServerFrame(enc Encoding, frame []byte, f *ServerFrame) error {
	*f = ServerFrame{
		scratch:      f.scratch[:0],
		Publications: f.Publications[:0],
		Clients:      f.Clients[:0],
	}
	var st frameState
	var err error
	if enc == JSON {
		f.walk.js = jsonWalker{r: jsonReader{b: frame}}
		err = decodeFrameObject(&f.walk.js, f, &st)
		f.walk.js = jsonWalker{}
	} else {
		f.walk.mp = mpWalker{r: mpReader{b: frame}}
		err = decodeFrameObject(&f.walk.mp, f, &st)
		f.walk.mp = mpWalker{}
	}
	if err != nil {
		return &FrameError{Err: err}
	}
	return checkFrame(f, &st)
}

// checkFrame applies the per-type rules to a structurally sound frame.
func checkFrame(f *ServerFrame, st *frameState) error {
	bad := func(field string, err error) error { return &FrameError{Field: field, Err: err} }
	if st.typeErr != nil {
		return bad("type", st.typeErr)
	}
	if !st.hasType {
		return bad("type", ErrMissing)
	}
	if f.Type == FrameUnknown {
		return nil
	}
	if st.fieldErr != nil {
		return bad(st.fieldName, st.fieldErr)
	}
	if st.hasData && st.hasB64 {
		return bad("b64", fmt.Errorf("%w: both data and b64", ErrInvalid))
	}
	switch f.Type {
	case FrameMessage, FrameJoin, FrameLeave, FrameGap, FrameEpoch, FrameUnsubscribe:
		if !st.hasChannel {
			return bad("channel", ErrMissing)
		}
	}
	switch f.Type {
	case FrameGap:
		if !st.hasFrom {
			return bad("from", ErrMissing)
		}
		if !st.hasTo {
			return bad("to", ErrMissing)
		}
		if f.From > f.To {
			return bad("to", fmt.Errorf("%w: to %d before from %d", ErrRange, f.To, f.From))
		}
	case FrameEpoch:
		if !st.hasEpoch {
			return bad("epoch", ErrMissing)
		}
	}
	return nil
}

// decodeFrameObject walks the top-level map/object.
func decodeFrameObject(w frameWalker, f *ServerFrame, st *frameState) error {
	if err := w.beginObject(); err != nil {
		return err
	}
	for {
		key, ok, err := w.nextKey()
		if err != nil {
			return err
		}
		if !ok {
			return w.end()
		}
		if err := setFrameField(w, f, st, key); err != nil {
			return err
		}
	}
}

// setFrameField consumes the value of key. It returns structural errors;
// field-level ones are recorded in st.
func setFrameField(w frameWalker, f *ServerFrame, st *frameState, key []byte) error {
	switch string(key) {
	case "error":
		return decodeErrorObject(w, f, st)
	case "publications":
		return decodePublications(w, f, st)
	case "clients": // presence: an array; presence_stats: a count
		return decodeClients(w, f, st)
	case "data":
		v, err := w.value(maxDataNesting)
		if err != nil {
			return err
		}
		d, ok, err := v.data()
		if err != nil {
			st.fail("data", err)
		}
		f.Data, f.HasData, st.hasData = d, ok, ok
		return nil
	}
	v, err := w.value(maxNesting)
	if err != nil {
		return err
	}
	setScalarField(f, st, key, v)
	return nil
}

func setScalarField(f *ServerFrame, st *frameState, key []byte, v fieldValue) {
	var err error
	switch string(key) {
	case "type":
		var ok bool
		f.TypeName, ok, err = v.str(&f.scratch)
		st.hasType, st.typeErr = ok, err
		f.Type = parseFrameType(f.TypeName)
	case "id":
		var x uint64
		x, _, err = v.uint(math.MaxUint32)
		f.ID = uint32(x)
	case "channel":
		f.Channel, st.hasChannel, err = v.str(&f.scratch)
	case "offset":
		f.Offset, f.HasOffset, err = v.uint(math.MaxUint64)
	case "epoch":
		f.Epoch, st.hasEpoch, err = v.str(&f.scratch)
	case "previous":
		f.Previous, _, err = v.str(&f.scratch)
	case "b64":
		err = setB64(f, st, v)
	case "recovered":
		f.Recovered, f.HasRecovered, err = v.boolean()
	case "reason":
		f.Reason, _, err = v.str(&f.scratch)
	case "replayed":
		f.Replayed, _, err = v.boolean()
	case "from":
		f.From, st.hasFrom, err = v.uint(math.MaxUint64)
	case "to":
		f.To, st.hasTo, err = v.uint(math.MaxUint64)
	case "client":
		f.Client, _, err = v.str(&f.scratch)
	case "user":
		f.User, _, err = v.str(&f.scratch)
	case "users":
		f.NumUsers, _, err = v.uint(math.MaxUint64)
		f.HasStats = true
	default:
		return // unknown key: its value was validated and skipped
	}
	if err != nil {
		st.fail(string(key), err)
	}
}

// setB64 decodes JSON's "b64" (the payload in standard base64, sent
// instead of "data" when the bytes are not JSON text). In MessagePack the
// key means nothing and is skipped.
func setB64(f *ServerFrame, st *frameState, v fieldValue) error {
	if !v.json {
		return nil
	}
	d, ok, err := v.b64(&f.scratch)
	if err != nil || !ok {
		return err
	}
	f.Data, f.HasData, st.hasB64 = d, true, true
	return nil
}

// decodeFields reads the keys of the map/object the walker has just
// entered and hands each value to set: nested at most maxNesting deep, or
// dataDepth for a "data" key. An error from set is the field's own: it is
// recorded in st as prefix+key and the walk goes on: whether it fails the
// frame depends on the frame's type, which may come later.
func decodeFields(w frameWalker, st *frameState, prefix string, dataDepth int, set func(key []byte, v fieldValue) error) error {
	for {
		key, ok, err := w.nextKey()
		if err != nil || !ok {
			return err
		}
		depth := maxNesting
		if string(key) == "data" {
			depth = dataDepth
		}
		v, err := w.value(depth)
		if err != nil {
			return err
		}
		if err := set(key, v); err != nil {
			st.fail(prefix+string(key), err)
		}
	}
}

// decodeErrorObject reads {"code","message"}; code is required, non-zero.
func decodeErrorObject(w frameWalker, f *ServerFrame, st *frameState) error {
	k, err := w.peek()
	if err != nil {
		return err
	}
	if k != kindObject {
		return failValue(w, st, "error", k, "map")
	}
	if err := w.beginObject(); err != nil {
		return err
	}
	hasCode := false
	err = decodeFields(w, st, "error.", maxNesting, func(key []byte, v fieldValue) (err error) {
		switch string(key) {
		case "code":
			var x uint64
			x, hasCode, err = v.uint(math.MaxUint32)
			f.ErrCode = ErrorCode(x)
		case "message":
			f.ErrMessage, _, err = v.str(&f.scratch)
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hasCode {
		st.fail("error.code", ErrMissing)
	} else if f.ErrCode == 0 {
		st.fail("error.code", fmt.Errorf("%w: 0 is not an error", ErrRange))
	}
	return nil
}

// failValue consumes a value of the wrong kind (nil: absent) and records
// the type error.
func failValue(w frameWalker, st *frameState, field string, k valueKind, want string) error {
	if _, err := w.value(maxNesting); err != nil {
		return err
	}
	if k != kindNil {
		st.fail(field, fmt.Errorf("%w: got %s, want %s", ErrType, k, want))
	}
	return nil
}
