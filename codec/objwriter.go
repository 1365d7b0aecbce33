package codec

// objWriter writes one map (MessagePack) or object (JSON) field by field,
// so that every encoder describes its structure once for both encodings.
// MessagePack needs the field count up front: the caller computes it.
type objWriter struct {
	b    []byte
	json bool
	n    int // fields written so far (JSON: a comma goes before all but the first)
}

func newObj(dst []byte, enc Encoding, fields int) objWriter {
	if enc == JSON {
		return objWriter{b: append(dst, '{'), json: true}
	}
	return objWriter{b: mpAppendMapLen(dst, fields)}
}

// key writes a key (a constant of this package: never needs escaping).
func (w *objWriter) key(k string) {
	if w.json {
		if w.n > 0 {
			w.b = append(w.b, ',')
		}
		w.b = jsonAppendKey(w.b, k)
	} else {
		w.b = mpAppendStr(w.b, k)
	}
	w.n++
}

func (w *objWriter) str(k, v string) {
	w.key(k)
	if w.json {
		w.b = jsonAppendStr(w.b, v)
	} else {
		w.b = mpAppendStr(w.b, v)
	}
}

func (w *objWriter) strBytes(k string, v []byte) {
	w.key(k)
	if w.json {
		w.b = jsonAppendStr(w.b, v)
	} else {
		w.b = mpAppendStr(w.b, v)
	}
}

func (w *objWriter) uint(k string, v uint64) {
	w.key(k)
	if w.json {
		w.b = jsonAppendUint(w.b, v)
	} else {
		w.b = mpAppendUint(w.b, v)
	}
}

func (w *objWriter) bool(k string, v bool) {
	w.key(k)
	if w.json {
		w.b = jsonAppendBool(w.b, v)
	} else {
		w.b = mpAppendBool(w.b, v)
	}
}

// data writes an opaque payload: bin in MessagePack; in JSON "data" with
// the raw text, or "b64" (see jsonAppendData).
func (w *objWriter) data(v []byte) {
	if w.json {
		if w.n > 0 {
			w.b = append(w.b, ',')
		}
		w.b = jsonAppendData(w.b, v)
		w.n++
		return
	}
	w.key("data")
	w.b = mpAppendBin(w.b, v)
}

// array writes a key and an array header; the caller then writes n
// elements, calling elem before each.
func (w *objWriter) array(k string, n int) {
	w.key(k)
	if w.json {
		w.b = append(w.b, '[')
	} else {
		w.b = mpAppendArrayLen(w.b, n)
	}
}

// elem separates array elements in JSON.
func (w *objWriter) elem(i int) {
	if w.json && i > 0 {
		w.b = append(w.b, ',')
	}
}

func (w *objWriter) endArray() {
	if w.json {
		w.b = append(w.b, ']')
	}
}

// obj starts a nested object as the current array element or field value.
func (w *objWriter) obj(fields int) objWriter {
	enc := Msgpack
	if w.json {
		enc = JSON
	}
	return newObj(w.b, enc, fields)
}

// end closes the object and returns the buffer.
func (w *objWriter) end() []byte {
	if w.json {
		w.b = append(w.b, '}')
	}
	return w.b
}
