package codec

import (
	"encoding/base64"
	"fmt"
)

// fieldValue is one complete, structurally validated value of either
// encoding; its typed accessors return field-level errors (ErrType,
// ErrRange, ErrInvalid) and present == false for nil/null.
type fieldValue struct {
	json bool
	mp   mpHead
	text []byte // JSON: the value's text
}

func (v fieldValue) uint(max uint64) (uint64, bool, error) {
	if v.json {
		return jsonUintVal(v.text, max)
	}
	return mpUintVal(v.mp, max)
}

func (v fieldValue) boolean() (bool, bool, error) {
	if v.json {
		return jsonBoolVal(v.text)
	}
	return mpBoolVal(v.mp)
}

// str returns a string's bytes; a JSON string with escapes is unescaped
// into *scratch.
func (v fieldValue) str(scratch *[]byte) ([]byte, bool, error) {
	if !v.json {
		return mpStrVal(v.mp)
	}
	switch v.text[0] {
	case 'n':
		return nil, false, nil
	case '"':
		return unescapeInto(scratch, v.text[1:len(v.text)-1]), true, nil
	}
	return nil, true, jsonTypeErr(v.text, "string")
}

// data returns an opaque payload: MessagePack bin or str; in JSON the
// value's text, whatever JSON value it is (null included: a publisher may
// have published the JSON text null).
func (v fieldValue) data() ([]byte, bool, error) {
	if v.json {
		return v.text, true, nil
	}
	return mpBytesVal(v.mp)
}

// b64 decodes a JSON string holding standard base64 into *scratch.
func (v fieldValue) b64(scratch *[]byte) ([]byte, bool, error) {
	s, ok, err := v.str(scratch)
	if err != nil || !ok {
		return nil, ok, err
	}
	start := len(*scratch)
	out, err := base64.StdEncoding.AppendDecode(*scratch, s)
	if err != nil {
		return nil, true, fmt.Errorf("%w: bad base64", ErrInvalid)
	}
	*scratch = out
	return out[start:len(out):len(out)], true, nil
}

// unescapeInto returns a validated JSON string's content: itself when it
// has no escapes, else its decoded form appended to *scratch.
func unescapeInto(scratch *[]byte, content []byte) []byte {
	for _, c := range content {
		if c == '\\' {
			start := len(*scratch)
			*scratch = unescape(*scratch, content)
			return (*scratch)[start:len(*scratch):len(*scratch)]
		}
	}
	return content
}
