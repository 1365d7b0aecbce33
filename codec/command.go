package codec

import (
	"fmt"
	"math"
)

// Command is one decoded client command.
//
// Channel, Data, Epoch and Token alias the frame passed to DecodeCommand
// (zero copy; for JSON, a string written with escapes is the exception and
// gets its own memory). They are valid only until the frame's buffer is
// reused: copy what must outlive it.
type Command struct {
	ID  uint32 // echoed in the reply; 0 = no reply wanted (errors are always replied)
	Cmd CommandType

	Channel []byte // subscribe, unsubscribe, publish, history, presence, presence_stats
	Data    []byte // publish: msgpack bin/str bytes, or the raw JSON text of the value

	// Offset: subscribe (resume position) and history (publications after it).
	Offset    uint64
	HasOffset bool
	// Epoch: subscribe (resume position); history (optional: check the epoch).
	Epoch    []byte
	HasEpoch bool

	Limit   int  // history: at most this many publications (0 = server default)
	Reverse bool // history: newest first

	Token []byte // refresh (required), subscribe (optional subscription token)

	// IdempotencyKey: publish (optional). A repeat of the key on the same
	// channel is answered with the first publication's position instead of
	// publishing again (see MaxIdempotencyKeyBytes).
	IdempotencyKey []byte
}

// MaxIdempotencyKeyBytes bounds a publish's idempotency_key (1 to this).
const MaxIdempotencyKeyBytes = 256

// Limits are the bounds DecodeCommand applies beyond the protocol's fixed
// ones (nesting, key count, integer ranges).
type Limits struct {
	// MaxChannelBytes bounds channel names (<= 0: DefaultMaxChannelBytes).
	MaxChannelBytes int
	// MaxDataBytes bounds publish data (<= 0: only the frame size bounds it).
	MaxDataBytes int
}

// maxLimit bounds history's "limit" so it fits an int everywhere.
const maxLimit = math.MaxInt32

// DecodeCommand decodes one client frame with the default Limits.
// See Limits.DecodeCommand.
func DecodeCommand(enc Encoding, frame []byte, c *Command) error {
	return Limits{}.DecodeCommand(enc, frame, c)
}

// DecodeCommand decodes one client frame into c (overwritten entirely).
// Any error is a *DecodeError saying whether the gateway can answer with an
// error reply or must close the connection (see DecodeError).
//
// Rules beyond types: "cmd" is required; channel commands require
// "channel", publish requires "data", refresh requires "token"; subscribe
// takes a resume position as "offset" and "epoch" together or neither.
// A nil/null value is the same as an absent key (except for JSON "data",
// where null is a JSON value like any other). Unknown keys are skipped; a
// repeated key's last value wins, but a wrongly typed value anywhere fails
// the command.
func (l Limits) DecodeCommand(enc Encoding, frame []byte, c *Command) error {
	*c = Command{}
	var st cmdState
	var err error
	if enc == JSON {
		err = decodeJSONCommand(frame, c, &st)
	} else {
		err = decodeMsgpackCommand(frame, c, &st)
	}
	if err != nil {
		return &DecodeError{Code: CodeBadRequest, ID: c.ID, Err: err}
	}
	if st.idErr != nil {
		return &DecodeError{Code: CodeBadRequest, ID: c.ID, Field: "id", Err: st.idErr}
	}
	return l.check(c, &st)
}

// cmdState carries what decoding learned beyond the Command's fields.
type cmdState struct {
	cmdName                     []byte
	hasCmd, hasChannel, hasData bool
	hasToken, hasKey            bool
	idErr                       error // the id was present but invalid
	cmdErr                      error // the cmd was present but not a string
	fieldErr                    error // first field of the wrong type or range
	fieldName                   string
}

// fail records the first field-level error; decoding goes on so that the
// id can still be read from a later key.
func (st *cmdState) fail(field string, err error) {
	if st.fieldErr == nil {
		st.fieldErr, st.fieldName = err, field
	}
}

// check applies the semantic rules to a structurally sound command. The
// command name is judged first: a future command may give a known key a
// new type, and an old server should say "unknown command" for it.
func (l Limits) check(c *Command, st *cmdState) error {
	bad := func(code ErrorCode, field string, err error) error {
		return &DecodeError{Code: code, ID: c.ID, IDKnown: true, Field: field, Err: err}
	}
	if st.cmdErr != nil {
		return bad(CodeBadRequest, "cmd", st.cmdErr)
	}
	if !st.hasCmd {
		return bad(CodeBadRequest, "cmd", ErrMissing)
	}
	t, ok := ParseCommandType(st.cmdName)
	if !ok {
		return bad(CodeUnknownCommand, "cmd", ErrUnknownCommand)
	}
	c.Cmd = t
	if st.fieldErr != nil {
		return bad(CodeBadRequest, st.fieldName, st.fieldErr)
	}
	if t.needsChannel() {
		if !st.hasChannel {
			return bad(CodeBadRequest, "channel", ErrMissing)
		}
		if !ValidChannel(c.Channel, l.MaxChannelBytes) {
			return bad(CodeBadChannel, "channel", ErrBadChannel)
		}
	}
	switch t {
	case CmdPublish:
		if !st.hasData {
			return bad(CodeBadRequest, "data", ErrMissing)
		}
		if l.MaxDataBytes > 0 && len(c.Data) > l.MaxDataBytes {
			return bad(CodePayloadTooLarge, "data", ErrTooLarge)
		}
		if st.hasKey && (len(c.IdempotencyKey) == 0 || len(c.IdempotencyKey) > MaxIdempotencyKeyBytes) {
			return bad(CodeBadRequest, "idempotency_key", fmt.Errorf("%w: 1 to %d bytes", ErrRange, MaxIdempotencyKeyBytes))
		}
	case CmdRefresh:
		if !st.hasToken {
			return bad(CodeBadRequest, "token", ErrMissing)
		}
	case CmdSubscribe:
		if c.HasOffset != c.HasEpoch {
			missing := "epoch"
			if !c.HasOffset {
				missing = "offset"
			}
			return bad(CodeBadRequest, missing, fmt.Errorf("%w: a resume position needs both offset and epoch", ErrMissing))
		}
	}
	return nil
}

// decodeMsgpackCommand walks the top-level map. Structural errors are
// returned (the frame is undecodable); field errors are recorded in st.
func decodeMsgpackCommand(frame []byte, c *Command, st *cmdState) error {
	r := mpReader{b: frame}
	n, err := r.mapStart()
	if err != nil {
		return err
	}
	for ; n > 0; n-- {
		k, err := r.key()
		if err != nil {
			return err
		}
		v, err := r.value()
		if err != nil {
			return err
		}
		setMsgpackField(c, st, k, v)
	}
	if r.rest() != 0 {
		return ErrTrailing
	}
	return nil
}

func setMsgpackField(c *Command, st *cmdState, key []byte, v mpHead) {
	switch string(key) {
	case "id":
		x, _, err := mpUintVal(v, math.MaxUint32)
		if err != nil {
			st.idErr = err
		}
		c.ID = uint32(x)
	case "cmd":
		s, ok, err := mpStrVal(v)
		if err != nil {
			st.cmdErr = err
		}
		st.cmdName, st.hasCmd = s, ok
	case "channel":
		s, ok, err := mpStrVal(v)
		if err != nil {
			st.fail("channel", err)
		}
		c.Channel, st.hasChannel = s, ok
	case "data":
		s, ok, err := mpBytesVal(v)
		if err != nil {
			st.fail("data", err)
		}
		c.Data, st.hasData = s, ok
	case "offset":
		x, ok, err := mpUintVal(v, math.MaxUint64)
		if err != nil {
			st.fail("offset", err)
		}
		c.Offset, c.HasOffset = x, ok
	case "epoch":
		s, ok, err := mpStrVal(v)
		if err != nil {
			st.fail("epoch", err)
		}
		c.Epoch, c.HasEpoch = s, ok
	case "limit":
		x, _, err := mpUintVal(v, maxLimit)
		if err != nil {
			st.fail("limit", err)
		}
		c.Limit = int(x)
	case "reverse":
		b, _, err := mpBoolVal(v)
		if err != nil {
			st.fail("reverse", err)
		}
		c.Reverse = b
	case "token":
		s, ok, err := mpStrVal(v)
		if err != nil {
			st.fail("token", err)
		}
		c.Token, st.hasToken = s, ok
	case "idempotency_key":
		s, ok, err := mpStrVal(v)
		if err != nil {
			st.fail("idempotency_key", err)
		}
		c.IdempotencyKey, st.hasKey = s, ok
	}
}
