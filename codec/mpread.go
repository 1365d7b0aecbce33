package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// maxNesting bounds how deep containers may nest inside one value of a
// command or envelope (the top-level map itself not counted). Commands only
// need scalars; the limit exists so that skipping an unknown key's value is
// forward compatible without letting a frame drive deep recursion.
const maxNesting = 8

// maxMapKeys bounds the top-level map of a command or an envelope. A real
// command has at most 9 keys; the bound leaves room for extensions while
// keeping per-frame work small.
const maxMapKeys = 32

// mpKind classifies a MessagePack value.
type mpKind uint8

const (
	mpNil mpKind = iota
	mpBool
	mpUint // positive fixint, uint8..uint64
	mpInt  // negative fixint, int8..int64 (any sign)
	mpFloat
	mpStr
	mpBin
	mpArray
	mpMap
	mpExt
)

func (k mpKind) String() string {
	return [...]string{"nil", "bool", "uint", "int", "float", "str", "bin", "array", "map", "ext"}[k]
}

// mpHead is one decoded value header. Scalars are complete; for str, bin
// and ext, data is the payload (a sub-slice of the input, bounds-checked);
// for array and map, n is the element count (entries for maps), already
// checked to be plausible against the remaining bytes.
type mpHead struct {
	kind mpKind
	u    uint64 // mpUint value, or array/map count
	i    int64  // mpInt value
	b    bool   // mpBool value
	data []byte // mpStr / mpBin / mpExt payload (ext: type byte included)
}

// mpReader walks a MessagePack buffer. It never allocates and never reads
// past b: every length is checked against the bytes that remain.
type mpReader struct {
	b   []byte
	off int
}

func (r *mpReader) rest() int { return len(r.b) - r.off }

func (r *mpReader) byte1() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// fixed reads a big-endian unsigned integer of size 1, 2, 4 or 8 bytes.
func (r *mpReader) fixed(size int) (uint64, error) {
	if r.rest() < size {
		return 0, ErrTruncated
	}
	p := r.b[r.off : r.off+size]
	r.off += size
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// take returns the next n bytes. n comes from the input, so it is compared
// with what remains before anything is sliced (or allocated).
func (r *mpReader) take(n uint64) ([]byte, error) {
	if n > uint64(r.rest()) {
		return nil, ErrLength
	}
	p := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return p, nil
}

// payload reads a size-byte length, then that many bytes.
func (r *mpReader) payload(size int) ([]byte, error) {
	n, err := r.fixed(size)
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// count reads a size-byte element count; perElem is 1 for arrays and 2 for
// maps. Each element needs at least one byte, so a count larger than the
// remaining bytes is rejected before anything iterates over it.
func (r *mpReader) count(size int, perElem uint64) (uint64, error) {
	n, err := r.fixed(size)
	if err != nil {
		return 0, err
	}
	if n*perElem > uint64(r.rest()) { // n < 2^32: no overflow
		return 0, ErrLength
	}
	return n, nil
}

// head decodes the next value's header (and whole value, for scalars).
func (r *mpReader) head() (h mpHead, err error) {
	c, err := r.byte1()
	if err != nil {
		return h, err
	}
	switch {
	case c <= 0x7f:
		return mpHead{kind: mpUint, u: uint64(c)}, nil
	case c >= 0xe0:
		return mpHead{kind: mpInt, i: int64(int8(c))}, nil
	case c <= 0x8f:
		h.kind = mpMap
		h.u, err = r.countFix(uint64(c&0x0f), 2)
		return h, err
	case c <= 0x9f:
		h.kind = mpArray
		h.u, err = r.countFix(uint64(c&0x0f), 1)
		return h, err
	case c <= 0xbf:
		h.kind = mpStr
		h.data, err = r.take(uint64(c & 0x1f))
		return h, err
	}
	return r.headC(c)
}

func (r *mpReader) countFix(n, perElem uint64) (uint64, error) {
	if n*perElem > uint64(r.rest()) {
		return 0, ErrLength
	}
	return n, nil
}

// headC decodes the 0xc0..0xdf range: everything with an explicit type
// byte.
func (r *mpReader) headC(c byte) (h mpHead, err error) {
	switch c {
	case 0xc0:
		return mpHead{kind: mpNil}, nil
	case 0xc2, 0xc3:
		return mpHead{kind: mpBool, b: c == 0xc3}, nil
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		h.kind = mpBin
		h.data, err = r.payload(1 << (c - 0xc4))
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length counts data after the type byte
		h.kind = mpExt
		var n uint64
		if n, err = r.fixed(1 << (c - 0xc7)); err == nil {
			h.data, err = r.take(n + 1)
		}
	case 0xca, 0xcb: // float 32/64: skipped as a whole, never interpreted
		h.kind = mpFloat
		_, err = r.take(4 << (c - 0xca))
	case 0xcc, 0xcd, 0xce, 0xcf:
		h.kind = mpUint
		h.u, err = r.fixed(1 << (c - 0xcc))
	case 0xd0, 0xd1, 0xd2, 0xd3:
		h.kind = mpInt
		var u uint64
		u, err = r.fixed(1 << (c - 0xd0))
		h.i = signExtend(u, 8<<(c-0xd0))
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16, plus the type byte
		h.kind = mpExt
		h.data, err = r.take(1 + 1<<(c-0xd4))
	case 0xd9, 0xda, 0xdb:
		h.kind = mpStr
		h.data, err = r.payload(1 << (c - 0xd9))
	case 0xdc, 0xdd:
		h.kind = mpArray
		h.u, err = r.count(2<<(c-0xdc), 1)
	case 0xde, 0xdf:
		h.kind = mpMap
		h.u, err = r.count(2<<(c-0xde), 2)
	default: // 0xc1 is never used
		err = ErrInvalid
	}
	return h, err
}

func signExtend(u uint64, bits uint) int64 {
	shift := 64 - bits
	return int64(u<<shift) >> shift
}

// skip consumes one value of any type, nested containers included, at
// nesting depth depth (0 for a value directly in the top-level map).
func (r *mpReader) skip(depth int) error {
	h, err := r.head()
	if err != nil {
		return err
	}
	return r.skipElems(h, depth)
}

// skipElems consumes the elements of a container whose header is h. Work is
// bounded by the input: every element consumes at least one byte.
func (r *mpReader) skipElems(h mpHead, depth int) error {
	var n uint64
	switch h.kind {
	case mpArray:
		n = h.u
	case mpMap:
		n = 2 * h.u
	default:
		return nil
	}
	if depth >= maxNesting {
		return ErrTooDeep
	}
	for ; n > 0; n-- {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// value consumes one value, nested containers included, and returns its
// header: structure is fully validated before the typed accessors below
// interpret it.
func (r *mpReader) value() (mpHead, error) {
	h, err := r.head()
	if err != nil {
		return h, err
	}
	return h, r.skipElems(h, 0)
}

// The typed accessors take a header from value and return present ==
// false for nil, so a nil value means "absent".

func typeErr(got mpKind, want string) error {
	return fmt.Errorf("%w: got %s, want %s", ErrType, got, want)
}

// mpUintVal accepts any integer encoding whose value is in [0, max]: some
// encoders use signed types for non-negative numbers.
func mpUintVal(h mpHead, max uint64) (x uint64, present bool, err error) {
	switch h.kind {
	case mpNil:
		return 0, false, nil
	case mpUint:
		x = h.u
	case mpInt:
		if h.i < 0 {
			return 0, true, fmt.Errorf("%w: negative", ErrRange)
		}
		x = uint64(h.i)
	default:
		return 0, true, typeErr(h.kind, "uint")
	}
	if x > max {
		return 0, true, fmt.Errorf("%w: over %d", ErrRange, max)
	}
	return x, true, nil
}

func mpIntVal(h mpHead) (x int64, present bool, err error) {
	switch h.kind {
	case mpNil:
		return 0, false, nil
	case mpInt:
		return h.i, true, nil
	case mpUint:
		if h.u > math.MaxInt64 {
			return 0, true, fmt.Errorf("%w: over int64", ErrRange)
		}
		return int64(h.u), true, nil
	}
	return 0, true, typeErr(h.kind, "int")
}

func mpStrVal(h mpHead) (s []byte, present bool, err error) {
	switch h.kind {
	case mpNil:
		return nil, false, nil
	case mpStr:
		return h.data, true, nil
	}
	return nil, true, typeErr(h.kind, "str")
}

// mpBytesVal accepts bin or str: both are opaque bytes.
func mpBytesVal(h mpHead) (s []byte, present bool, err error) {
	switch h.kind {
	case mpNil:
		return nil, false, nil
	case mpStr, mpBin:
		return h.data, true, nil
	}
	return nil, true, typeErr(h.kind, "bin or str")
}

func mpBoolVal(h mpHead) (b, present bool, err error) {
	switch h.kind {
	case mpNil:
		return false, false, nil
	case mpBool:
		return h.b, true, nil
	}
	return false, true, typeErr(h.kind, "bool")
}

// mapStart reads the top-level map header of a command or envelope. The
// key limit is checked before the plausibility of the count, so a map32
// declaring 4 billion entries is reported as too many keys.
func (r *mpReader) mapStart() (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = uint64(c & 0x0f)
	case c == 0xde || c == 0xdf:
		if n, err = r.fixed(2 << (c - 0xde)); err != nil {
			return 0, err
		}
	default:
		return 0, ErrNotMap
	}
	if n > maxMapKeys {
		return 0, ErrTooManyKeys
	}
	if _, err := r.countFix(n, 2); err != nil {
		return 0, err
	}
	return int(n), nil
}

// key reads a map key, which must be a str.
func (r *mpReader) key() ([]byte, error) {
	// Fast path: every key of the protocol is a fixstr.
	if r.off < len(r.b) && r.b[r.off]&0xe0 == 0xa0 {
		n := int(r.b[r.off] & 0x1f)
		if start := r.off + 1; n <= len(r.b)-start {
			r.off = start + n
			return r.b[start:r.off:r.off], nil
		}
	}
	h, err := r.head()
	if err != nil {
		return nil, err
	}
	if h.kind != mpStr {
		return nil, fmt.Errorf("%w: got %s", ErrKeyType, h.kind)
	}
	return h.data, nil
}
