package codec

import "math"

// decodeJSONCommand walks the top-level object. Structural errors are
// returned (the frame is undecodable); field errors are recorded in st.
func decodeJSONCommand(frame []byte, c *Command, st *cmdState) error {
	r := jsonReader{b: frame}
	r.ws()
	first, err := r.peek()
	if err != nil {
		return err
	}
	if first != '{' {
		return ErrNotMap
	}
	r.off++
	r.ws()
	next, err := r.peek()
	if err != nil {
		return err
	}
	if next == '}' {
		r.off++
		return r.end()
	}
	for keys := 1; ; keys++ {
		if keys > maxMapKeys {
			return ErrTooManyKeys
		}
		if err := r.member(c, st); err != nil {
			return err
		}
		r.ws()
		sep, err := r.peek()
		if err != nil {
			return err
		}
		r.off++
		switch sep {
		case '}':
			return r.end()
		case ',':
		default:
			return ErrInvalid
		}
	}
}

// member consumes `"key": value` and stores the value in c.
func (r *jsonReader) member(c *Command, st *cmdState) error {
	content, escaped, err := r.str()
	if err != nil {
		return err
	}
	if err := r.expect(':'); err != nil {
		return err
	}
	var buf [16]byte
	key := keyBytes(content, escaped, buf[:])
	depth := maxNesting
	if string(key) == "data" {
		depth = maxDataNesting
	}
	v, err := r.value(depth)
	if err != nil {
		return err
	}
	setJSONField(c, st, key, v)
	return nil
}

// end checks that nothing but whitespace follows the top-level object.
func (r *jsonReader) end() error {
	r.ws()
	if r.off != len(r.b) {
		return ErrTrailing
	}
	return nil
}

// keyBytes returns a validated key's content, unescaped into buf when it
// has escapes (rare: no known key needs them).
func keyBytes(content []byte, escaped bool, buf []byte) []byte {
	if !escaped {
		return content
	}
	return unescape(buf[:0], content)
}

func setJSONField(c *Command, st *cmdState, key, v []byte) {
	switch string(key) {
	case "id":
		x, _, err := jsonUintVal(v, math.MaxUint32)
		if err != nil {
			st.idErr = err
		}
		c.ID = uint32(x)
	case "cmd":
		s, ok, err := jsonStrVal(v)
		if err != nil {
			st.cmdErr = err
		}
		st.cmdName, st.hasCmd = s, ok
	case "channel":
		s, ok, err := jsonStrVal(v)
		if err != nil {
			st.fail("channel", err)
		}
		c.Channel, st.hasChannel = s, ok
	case "data":
		c.Data, st.hasData = v, true // any JSON value, kept as its text
	case "offset":
		x, ok, err := jsonUintVal(v, math.MaxUint64)
		if err != nil {
			st.fail("offset", err)
		}
		c.Offset, c.HasOffset = x, ok
	case "epoch":
		s, ok, err := jsonStrVal(v)
		if err != nil {
			st.fail("epoch", err)
		}
		c.Epoch, c.HasEpoch = s, ok
	case "limit":
		x, _, err := jsonUintVal(v, maxLimit)
		if err != nil {
			st.fail("limit", err)
		}
		c.Limit = int(x)
	case "reverse":
		b, _, err := jsonBoolVal(v)
		if err != nil {
			st.fail("reverse", err)
		}
		c.Reverse = b
	case "token":
		s, ok, err := jsonStrVal(v)
		if err != nil {
			st.fail("token", err)
		}
		c.Token, st.hasToken = s, ok
	case "idempotency_key":
		s, ok, err := jsonStrVal(v)
		if err != nil {
			st.fail("idempotency_key", err)
		}
		c.IdempotencyKey, st.hasKey = s, ok
	}
}
