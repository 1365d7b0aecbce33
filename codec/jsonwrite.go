package codec

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// jsonAppendStr appends s as a JSON string. Like encoding/json (without
// its HTML escaping) it escapes quotes, backslashes, control characters and
// U+2028/U+2029, and replaces invalid UTF-8 with U+FFFD, so the output is
// always valid JSON in valid UTF-8.
func jsonAppendStr[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = jsonAppendEscape(dst, c)
			i++
			start = i
			continue
		}
		// At most 4 bytes: the conversion of a []byte stays on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			if r == utf8.RuneError {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, `\u202`...)
				dst = append(dst, hexDigits[r&0xf])
			}
			start = i + size
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonAppendEscape writes the escape for an ASCII byte that needs one.
func jsonAppendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// jsonAppendKey writes `"key":` for a key known to need no escaping.
func jsonAppendKey(dst []byte, key string) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func jsonAppendUint(dst []byte, v uint64) []byte {
	return strconv.AppendUint(dst, v, 10)
}

func jsonAppendBool(dst []byte, b bool) []byte {
	return strconv.AppendBool(dst, b)
}

// jsonAppendData writes an opaque payload: `"data":<raw>` when the bytes
// are themselves JSON text in valid UTF-8 (so a JSON publisher's value
// arrives as it was sent), otherwise `"b64":"<standard base64>"`, so that
// binary payloads from MessagePack clients still reach JSON clients,
// losslessly and inside a valid UTF-8 text frame.
func jsonAppendData(dst, data []byte) []byte {
	if validJSON(data) {
		dst = jsonAppendKey(dst, "data")
		return append(dst, data...)
	}
	dst = jsonAppendKey(dst, "b64")
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, data)
	return append(dst, '"')
}
