package wsframe

import "unicode/utf8"

// utf8Validator checks UTF-8 incrementally, so a text message that arrives
// in pieces (fragments, or one frame split across reads) is rejected at the
// first invalid byte instead of after the whole message has been buffered.
// Its state is three bytes: how many continuation bytes are still expected
// and the range the next one must fall in (which excludes overlong forms,
// surrogates and code points above U+10FFFF).
type utf8Validator struct {
	need   uint8
	lo, hi byte
}

// write feeds p and reports whether it is still a valid prefix.
func (v *utf8Validator) write(p []byte) bool {
	if v.need == 0 && utf8.Valid(p) {
		return true // fast path: whole chunk valid and ends on a boundary
	}
	for _, b := range p {
		if v.need > 0 {
			if b < v.lo || b > v.hi {
				return false
			}
			v.need--
			v.lo, v.hi = 0x80, 0xBF
			continue
		}
		if b < 0x80 {
			continue
		}
		if !v.start(b) {
			return false
		}
	}
	return true
}

// start sets up the state after a leading byte b ≥ 0x80.
func (v *utf8Validator) start(b byte) bool {
	v.lo, v.hi = 0x80, 0xBF
	switch {
	case b >= 0xC2 && b <= 0xDF:
		v.need = 1
	case b == 0xE0:
		v.need, v.lo = 2, 0xA0 // no overlong 3-byte forms
	case b == 0xED:
		v.need, v.hi = 2, 0x9F // no surrogates
	case b >= 0xE1 && b <= 0xEF:
		v.need = 2
	case b == 0xF0:
		v.need, v.lo = 3, 0x90 // no overlong 4-byte forms
	case b >= 0xF1 && b <= 0xF3:
		v.need = 3
	case b == 0xF4:
		v.need, v.hi = 3, 0x8F // nothing above U+10FFFF
	default:
		return false
	}
	return true
}

// complete reports whether the input so far ends on a code point boundary.
func (v *utf8Validator) complete() bool { return v.need == 0 }

func (v *utf8Validator) reset() { *v = utf8Validator{} }
