package api

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// payload is the "data" | "b64data" pair of publish and broadcast.
type payload struct {
	// Data keeps the value's exact text. "data": null arrives as the
	// four bytes null (json.RawMessage is handed the literal), so it is
	// a value, not an absent field, as in the client protocol.
	Data    json.RawMessage `json:"data"`
	B64Data *string         `json:"b64data"`
}

// bytes returns what to publish.
func (p *payload) bytes() ([]byte, error) {
	switch {
	case p.Data != nil && p.B64Data != nil:
		return nil, badRequest(`"data" and "b64data" are mutually exclusive`)
	case p.Data != nil:
		return p.Data, nil
	case p.B64Data != nil:
		b, err := base64.StdEncoding.DecodeString(*p.B64Data)
		if err != nil {
			return nil, badRequest(`"b64data" is not standard base64: %v`, err)
		}
		return b, nil
	}
	return nil, badRequest(`missing "data" or "b64data"`)
}

// outData is a payload in a response: raw when it is JSON text in valid
// UTF-8 (encoding/json does not check UTF-8 itself, and a response must
// stay valid JSON), base64 otherwise.
type outData struct {
	Data    json.RawMessage `json:"data,omitempty"`
	B64Data *string         `json:"b64data,omitempty"`
}

func encodeData(b []byte) outData {
	if json.Valid(b) && utf8.Valid(b) {
		return outData{Data: b}
	}
	s := base64.StdEncoding.EncodeToString(b)
	return outData{B64Data: &s}
}
