package codec

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDataNesting bounds nesting inside a JSON publish "data" value (and
// inside payloads AppendMessage embeds as JSON). Application payloads nest
// deeper than command fields; the scanner is iterative, so the bound only
// sizes a fixed bit stack.
const maxDataNesting = 256

// jsonReader scans JSON text. It validates as strictly as encoding/json
// (RFC 8259 grammar) and additionally requires strings to be valid UTF-8,
// so that anything it accepts can be forwarded in a WebSocket text frame.
type jsonReader struct {
	b   []byte
	off int
}

func (r *jsonReader) ws() {
	for r.off < len(r.b) {
		switch r.b[r.off] {
		case ' ', '\t', '\n', '\r':
			r.off++
		default:
			return
		}
	}
}

// peek returns the next byte without consuming it.
func (r *jsonReader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrTruncated
	}
	return r.b[r.off], nil
}

// expect consumes c, after optional whitespace.
func (r *jsonReader) expect(c byte) error {
	r.ws()
	got, err := r.peek()
	if err != nil {
		return err
	}
	if got != c {
		return ErrInvalid
	}
	r.off++
	return nil
}

// str consumes a string starting at '"' and returns its content (between
// the quotes, still escaped) and whether it contains escapes.
func (r *jsonReader) str() (content []byte, escaped bool, err error) {
	if err := r.expect('"'); err != nil {
		return nil, false, err
	}
	start := r.off
	for r.off < len(r.b) {
		c := r.b[r.off]
		switch {
		case c == '"':
			r.off++
			return r.b[start : r.off-1 : r.off-1], escaped, nil
		case c == '\\':
			escaped = true
			if err := r.escape(); err != nil {
				return nil, false, err
			}
		case c < 0x20:
			return nil, false, ErrInvalid
		case c < utf8.RuneSelf:
			r.off++
		case !utf8.FullRune(r.b[r.off:]):
			return nil, false, ErrTruncated
		default:
			ch, size := utf8.DecodeRune(r.b[r.off:])
			if ch == utf8.RuneError && size == 1 {
				return nil, false, ErrInvalid
			}
			r.off += size
		}
	}
	return nil, false, ErrTruncated
}

// escape consumes one escape sequence starting at the backslash.
func (r *jsonReader) escape() error {
	if r.off+1 >= len(r.b) {
		return ErrTruncated
	}
	switch r.b[r.off+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		r.off += 2
		return nil
	case 'u':
		if r.off+6 > len(r.b) {
			return ErrTruncated
		}
		if _, ok := hex4(r.b[r.off+2 : r.off+6]); !ok {
			return ErrInvalid
		}
		r.off += 6
		return nil
	}
	return ErrInvalid
}

func hex4(p []byte) (rune, bool) {
	var v rune
	for _, c := range p[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}

func (r *jsonReader) digits() int {
	n := 0
	for r.off < len(r.b) && '0' <= r.b[r.off] && r.b[r.off] <= '9' {
		r.off++
		n++
	}
	return n
}

// number consumes -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *jsonReader) number() error {
	if r.b[r.off] == '-' {
		r.off++
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch {
	case c == '0':
		r.off++
	case '1' <= c && c <= '9':
		r.digits()
	default:
		return ErrInvalid
	}
	if r.off < len(r.b) && r.b[r.off] == '.' {
		r.off++
		if err := r.someDigits(); err != nil {
			return err
		}
	}
	if r.off < len(r.b) && (r.b[r.off] == 'e' || r.b[r.off] == 'E') {
		r.off++
		if r.off < len(r.b) && (r.b[r.off] == '+' || r.b[r.off] == '-') {
			r.off++
		}
		return r.someDigits()
	}
	return nil
}

func (r *jsonReader) someDigits() error {
	if r.digits() > 0 {
		return nil
	}
	if r.off >= len(r.b) {
		return ErrTruncated
	}
	return ErrInvalid
}

func (r *jsonReader) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if r.off >= len(r.b) {
			return ErrTruncated
		}
		if r.b[r.off] != lit[i] {
			return ErrInvalid
		}
		r.off++
	}
	return nil
}

// scalar consumes a string, number or literal starting at c.
func (r *jsonReader) scalar(c byte) error {
	switch {
	case c == '"':
		_, _, err := r.str()
		return err
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return r.number()
	}
	return ErrInvalid
}

// containerStack records, one bit per level, whether each open container
// is an object (1) or an array (0); fixed size, so scanning never
// allocates and never recurses.
type containerStack struct {
	bits  [maxDataNesting / 64]uint64
	depth int
}

func (s *containerStack) push(object bool) {
	w, b := s.depth/64, uint(s.depth%64)
	s.bits[w] &^= 1 << b
	if object {
		s.bits[w] |= 1 << b
	}
	s.depth++
}

func (s *containerStack) topIsObject() bool {
	d := s.depth - 1
	return s.bits[d/64]&(1<<uint(d%64)) != 0
}

// value consumes one value with at most maxDepth nested containers (<=
// maxDataNesting) and returns its text, without surrounding whitespace.
func (r *jsonReader) value(maxDepth int) ([]byte, error) {
	r.ws()
	start := r.off
	var st containerStack
	for {
		// A value is expected here.
		c, err := r.peek()
		if err != nil {
			return nil, err
		}
		if c == '{' || c == '[' {
			if st.depth >= maxDepth {
				return nil, ErrTooDeep
			}
			r.off++
			st.push(c == '{')
			empty, err := r.open(c == '{')
			if err != nil {
				return nil, err
			}
			if !empty {
				continue
			}
			st.depth--
		} else if err := r.scalar(c); err != nil {
			return nil, err
		}
		// A value ended: close containers until one wants another value.
		more, err := r.next(&st)
		if err != nil {
			return nil, err
		}
		if !more {
			return r.b[start:r.off:r.off], nil
		}
	}
}

// open runs after '{' or '[': it consumes the closing bracket of an empty
// container (empty == true), or an object's first key and its colon.
func (r *jsonReader) open(object bool) (empty bool, err error) {
	r.ws()
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if (object && c == '}') || (!object && c == ']') {
		r.off++
		return true, nil
	}
	if object {
		return false, r.key()
	}
	return false, nil
}

// key consumes an object key and the colon after it.
func (r *jsonReader) key() error {
	if _, _, err := r.str(); err != nil {
		return err
	}
	if err := r.expect(':'); err != nil {
		return err
	}
	r.ws()
	return nil
}

// next runs after a value inside st's containers: it consumes closing
// brackets and returns more == true after a comma (and, in an object, the
// next key), or false when the outermost value is complete.
func (r *jsonReader) next(st *containerStack) (more bool, err error) {
	for st.depth > 0 {
		r.ws()
		c, err := r.peek()
		if err != nil {
			return false, err
		}
		obj := st.topIsObject()
		switch {
		case c == ',':
			r.off++
			r.ws()
			if obj {
				return true, r.key()
			}
			return true, nil
		case (obj && c == '}') || (!obj && c == ']'):
			r.off++
			st.depth--
		default:
			return false, ErrInvalid
		}
	}
	return false, nil
}

// validJSON reports whether b is one JSON value (surrounding whitespace
// allowed) with valid UTF-8 strings and at most maxDataNesting levels: the
// test for embedding bytes raw in a JSON text frame. It accepts a subset of
// what json.Valid accepts.
func validJSON(b []byte) bool {
	r := jsonReader{b: b}
	if _, err := r.value(maxDataNesting); err != nil {
		return false
	}
	r.ws()
	return r.off == len(b)
}

// unescape appends the decoded form of a validated string's content.
// Invalid surrogates become U+FFFD, as encoding/json does.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch e := s[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			var ch rune
			ch, i = unicodeEscape(s, i)
			dst = utf8.AppendRune(dst, ch)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

// unicodeEscape decodes \uXXXX at s[i:], joining a surrogate pair, and
// returns the rune and the index after what it consumed.
func unicodeEscape(s []byte, i int) (rune, int) {
	ch, _ := hex4(s[i+2:])
	i += 6
	if !utf16.IsSurrogate(ch) {
		return ch, i
	}
	if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
		if lo, ok := hex4(s[i+2:]); ok {
			if pair := utf16.DecodeRune(ch, lo); pair != utf8.RuneError {
				return pair, i + 6
			}
		}
	}
	return utf8.RuneError, i
}

// jsonKind names the type of a validated value for error messages.
func jsonKind(v []byte) string {
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func jsonTypeErr(v []byte, want string) error {
	return fmt.Errorf("%w: got %s, want %s", ErrType, jsonKind(v), want)
}

// jsonUintVal accepts an integer literal (no fraction, no exponent) in
// [0, max]; null means absent.
func jsonUintVal(v []byte, max uint64) (x uint64, present bool, err error) {
	switch c := v[0]; {
	case c == 'n':
		return 0, false, nil
	case c == '-':
		return 0, true, fmt.Errorf("%w: negative", ErrRange)
	case c < '0' || c > '9':
		return 0, true, jsonTypeErr(v, "integer")
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, true, fmt.Errorf("%w: not an integer", ErrType)
		}
		d := uint64(c - '0')
		if x > (max-d)/10 {
			return 0, true, fmt.Errorf("%w: over %d", ErrRange, max)
		}
		x = x*10 + d
	}
	return x, true, nil
}

// jsonStrVal returns a string's bytes: the frame's own bytes when it has no
// escapes, a fresh copy otherwise.
func jsonStrVal(v []byte) (s []byte, present bool, err error) {
	switch v[0] {
	case 'n':
		return nil, false, nil
	case '"':
		content := v[1 : len(v)-1]
		for _, c := range content {
			if c == '\\' {
				return unescape(make([]byte, 0, len(content)), content), true, nil
			}
		}
		return content, true, nil
	}
	return nil, true, jsonTypeErr(v, "string")
}

func jsonBoolVal(v []byte) (b, present bool, err error) {
	switch v[0] {
	case 'n':
		return false, false, nil
	case 't', 'f':
		return v[0] == 't', true, nil
	}
	return false, true, jsonTypeErr(v, "bool")
}
