package codec

// A frameWalker steps through a server frame's containers in either
// encoding, so that DecodeServerFrame states each field's meaning once.
// The walkers keep a fixed-size stack (server frames nest at most
// maxFrameDepth containers deep where fields are read; anything deeper is
// only skipped, by the bounded value readers), never recurse and never
// allocate beyond a JSON key written with escapes.
type frameWalker interface {
	// beginObject consumes a map/object's header ('{'); the caller then
	// calls nextKey until it reports the end.
	beginObject() error
	// nextKey returns the next key of the innermost open object, with the
	// walker before its value; ok == false consumes the object's end.
	nextKey() (key []byte, ok bool, err error)
	// beginArray and nextElem do the same for arrays.
	beginArray() error
	nextElem() (more bool, err error)
	// peek tells the kind of the next value without consuming it.
	peek() (valueKind, error)
	// value consumes one complete value, nested containers at most
	// maxDepth deep (JSON; MessagePack values are bounded by maxNesting).
	value(maxDepth int) (fieldValue, error)
	// end checks that nothing follows the top-level value.
	end() error
	// save and restore let a caller read a stretch twice (to count an
	// array's elements before allocating room for them).
	save() walkPos
	restore(walkPos)
}

// walkPos is a walker's whole state: its offset and container stack.
type walkPos struct {
	off, depth int
	left       [maxFrameDepth]uint64
	first      [maxFrameDepth]bool
	keys       [maxFrameDepth]int
}

// maxFrameDepth bounds the containers a walker opens: frame → publications
// array → publication map.
const maxFrameDepth = 4

type valueKind uint8

const (
	kindScalar valueKind = iota
	kindNil
	kindArray
	kindObject
)

func (k valueKind) String() string {
	return [...]string{"scalar", "nil", "array", "map"}[k]
}

// mpWalker walks MessagePack.
type mpWalker struct {
	r     mpReader
	left  [maxFrameDepth]uint64 // elements (keys) still to read, per open container
	depth int
}

func (w *mpWalker) push(n uint64) error {
	if w.depth == maxFrameDepth {
		return ErrTooDeep
	}
	w.left[w.depth] = n
	w.depth++
	return nil
}

// next consumes one element count of the innermost container.
func (w *mpWalker) next() bool {
	if w.depth == 0 || w.left[w.depth-1] == 0 {
		w.depth = max(w.depth-1, 0)
		return false
	}
	w.left[w.depth-1]--
	return true
}

func (w *mpWalker) beginObject() error {
	n, err := w.r.mapStart() // at most maxMapKeys, each plausible
	if err != nil {
		return err
	}
	return w.push(uint64(n))
}

func (w *mpWalker) nextKey() ([]byte, bool, error) {
	if !w.next() {
		return nil, false, nil
	}
	k, err := w.r.key()
	return k, err == nil, err
}

func (w *mpWalker) beginArray() error {
	h, err := w.r.head()
	if err != nil {
		return err
	}
	if h.kind != mpArray {
		return typeErr(h.kind, "array")
	}
	return w.push(h.u) // head checked the count against the bytes left
}

func (w *mpWalker) nextElem() (bool, error) { return w.next(), nil }

func (w *mpWalker) peek() (valueKind, error) {
	if w.r.rest() == 0 {
		return kindScalar, ErrTruncated
	}
	switch c := w.r.b[w.r.off]; {
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		return kindObject, nil
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		return kindArray, nil
	case c == 0xc0:
		return kindNil, nil
	}
	return kindScalar, nil
}

func (w *mpWalker) value(int) (fieldValue, error) {
	h, err := w.r.value()
	return fieldValue{mp: h}, err
}

func (w *mpWalker) save() walkPos { return walkPos{off: w.r.off, depth: w.depth, left: w.left} }

func (w *mpWalker) restore(p walkPos) { w.r.off, w.depth, w.left = p.off, p.depth, p.left }

func (w *mpWalker) end() error {
	if w.r.rest() != 0 {
		return ErrTrailing
	}
	return nil
}

// jsonWalker walks JSON text.
type jsonWalker struct {
	r      jsonReader
	first  [maxFrameDepth]bool // no member/element read yet, per open container
	keys   [maxFrameDepth]int  // keys read so far, per open object
	depth  int
	keyBuf [32]byte // unescaped keys (no protocol key needs escapes)
}

func (w *jsonWalker) push() error {
	if w.depth == maxFrameDepth {
		return ErrTooDeep
	}
	w.first[w.depth], w.keys[w.depth] = true, 0
	w.depth++
	return nil
}

func (w *jsonWalker) open(c byte) error {
	w.r.ws()
	got, err := w.r.peek()
	if err != nil {
		return err
	}
	if got != c {
		if c == '{' && w.depth == 0 {
			return ErrNotMap
		}
		return ErrInvalid
	}
	w.r.off++
	return w.push()
}

// next moves past the separator before the innermost container's next
// member or element; more == false consumes its closing bracket.
func (w *jsonWalker) next(closer byte) (more bool, err error) {
	if w.depth == 0 {
		return false, nil
	}
	w.r.ws()
	c, err := w.r.peek()
	if err != nil {
		return false, err
	}
	d := w.depth - 1
	switch {
	case c == closer:
		w.r.off++
		w.depth--
		return false, nil
	case w.first[d]:
		w.first[d] = false
		return true, nil
	case c == ',':
		w.r.off++
		return true, nil
	}
	return false, ErrInvalid
}

func (w *jsonWalker) beginObject() error { return w.open('{') }

func (w *jsonWalker) nextKey() ([]byte, bool, error) {
	more, err := w.next('}')
	if err != nil || !more {
		return nil, false, err
	}
	if w.keys[w.depth-1]++; w.keys[w.depth-1] > maxMapKeys {
		return nil, false, ErrTooManyKeys
	}
	content, escaped, err := w.r.str()
	if err != nil {
		return nil, false, err
	}
	if err := w.r.expect(':'); err != nil {
		return nil, false, err
	}
	return keyBytes(content, escaped, w.keyBuf[:]), true, nil
}

func (w *jsonWalker) beginArray() error { return w.open('[') }

func (w *jsonWalker) nextElem() (bool, error) { return w.next(']') }

func (w *jsonWalker) peek() (valueKind, error) {
	w.r.ws()
	c, err := w.r.peek()
	if err != nil {
		return kindScalar, err
	}
	switch c {
	case '{':
		return kindObject, nil
	case '[':
		return kindArray, nil
	case 'n':
		return kindNil, nil
	}
	return kindScalar, nil
}

func (w *jsonWalker) value(maxDepth int) (fieldValue, error) {
	text, err := w.r.value(maxDepth)
	return fieldValue{json: true, text: text}, err
}

func (w *jsonWalker) end() error { return w.r.end() }

func (w *jsonWalker) save() walkPos {
	return walkPos{off: w.r.off, depth: w.depth, first: w.first, keys: w.keys}
}

func (w *jsonWalker) restore(p walkPos) {
	w.r.off, w.depth, w.first, w.keys = p.off, p.depth, p.first, p.keys
}
