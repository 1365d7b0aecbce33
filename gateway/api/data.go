package api

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// payload is the "data" | "b64" pair of publish and broadcast.
type payload struct {
	// Data keeps the value's exact text. "data": null arrives as the
	// four bytes null (json.RawMessage is handed the literal), so it is
	// a value, not an absent field, as in the client protocol.
	Data json.RawMessage `json:"data"`
	B64  *string         `json:"b64"`
}

// bytes returns what to publish.
func (p *payload) bytes() ([]byte, error) {
	switch {
	case p.Data != nil && p.B64 != nil:
		return nil, badRequest(`"data" and "b64" are mutually exclusive`)
	case p.Data != nil:
		return p.Data, nil
	case p.B64 != nil:
		b, err := base64.StdEncoding.DecodeString(*p.B64)
		if err != nil {
			return nil, badRequest(`"b64" is not standard base64: %v`, err)
		}
		return b, nil
	}
	return nil, badRequest(`missing "data" or "b64"`)
}

// outData is a payload in a response: raw when it is JSON text in valid
// UTF-8 (encoding/json does not check UTF-8 itself, and a response must
// stay valid JSON), base64 otherwise.
type outData struct {
	Data json.RawMessage `json:"data,omitempty"`
	B64  *string         `json:"b64,omitempty"`
}

func encodeData(b []byte) outData {
	if json.Valid(b) && utf8.Valid(b) {
		return outData{Data: b}
	}
	s := base64.StdEncoding.EncodeToString(b)
	return outData{B64: &s}
}
