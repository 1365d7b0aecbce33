package codec

import (
	"errors"
	"fmt"
)

// ErrDataNotJSON is returned by AppendCommand for a JSON publish whose Data
// is not JSON text: the JSON protocol carries data as a JSON value.
var ErrDataNotJSON = errors.New("codec: data is not JSON text in valid UTF-8")

// AppendCommand appends c's encoding: the client side of DecodeCommand,
// for SDKs, load generators and tests. It writes "id", "cmd", and each
// other field that is set: Channel and Token when not nil (Channel always
// for channel commands), Data when not nil or for publish, Offset/Epoch
// when HasOffset/HasEpoch, Limit when not 0, Reverse when true,
// IdempotencyKey when not nil.
func AppendCommand(dst []byte, enc Encoding, c *Command) ([]byte, error) {
	hasChannel := c.Channel != nil || c.Cmd.needsChannel()
	hasData := c.Data != nil || c.Cmd == CmdPublish
	if c.Limit < 0 {
		return dst, fmt.Errorf("codec: negative limit %d", c.Limit)
	}
	if enc == JSON && hasData && !validJSON(c.Data) {
		return dst, fmt.Errorf("%w (%d bytes)", ErrDataNotJSON, len(c.Data))
	}
	fields := 2 + count(hasChannel, hasData, c.HasOffset, c.HasEpoch,
		c.Limit != 0, c.Reverse, c.Token != nil, c.IdempotencyKey != nil)
	w := newObj(dst, enc, fields)
	w.uint("id", uint64(c.ID))
	w.str("cmd", c.Cmd.String())
	if hasChannel {
		w.strBytes("channel", c.Channel)
	}
	if hasData {
		w.key("data")
		if w.json {
			w.b = append(w.b, c.Data...)
		} else {
			w.b = mpAppendBin(w.b, c.Data)
		}
	}
	if c.HasOffset {
		w.uint("offset", c.Offset)
	}
	if c.HasEpoch {
		w.strBytes("epoch", c.Epoch)
	}
	if c.Limit != 0 {
		w.uint("limit", uint64(c.Limit))
	}
	if c.Reverse {
		w.bool("reverse", true)
	}
	if c.Token != nil {
		w.strBytes("token", c.Token)
	}
	if c.IdempotencyKey != nil {
		w.strBytes("idempotency_key", c.IdempotencyKey)
	}
	return w.end(), nil
}

func count(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}
