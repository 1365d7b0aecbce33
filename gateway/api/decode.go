package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// decode parses body, a JSON object, into a new T. Unknown fields are
// ignored; every other problem is a 400 whose reason says what and where,
// because "bad request" alone leaves a backend developer guessing.
func decode[T any](body []byte) (*T, error) {
	v := new(T)
	if len(bytes.TrimSpace(body)) == 0 {
		return v, nil // curl -X POST without -d: the same as {}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return nil, decodeError(err, reflect.TypeFor[T]())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("malformed JSON: data after the top-level object")
	}
	return v, nil
}

func decodeError(err error, t reflect.Type) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: unexpected end of input")
	case errors.As(err, &typ) && typ.Field == "":
		return badRequest("body must be a JSON object, not %s", typ.Value)
	case errors.As(err, &typ):
		// Field is a Go path ("payload.b64" for an embedded struct);
		// the last element is the JSON name, as no name has a dot.
		name := typ.Field[strings.LastIndexByte(typ.Field, '.')+1:]
		if ft := fieldType(t, name); ft != nil && ft.Kind() == reflect.Slice && ft.Elem() == typ.Type {
			return badRequest("field %q must be %s, not an array with a %s", name, describe(ft), typ.Value)
		}
		return badRequest("field %q must be %s, not %s", name, describe(typ.Type), typ.Value)
	}
	return badRequest("malformed JSON: %v", err)
}

// describe names a Go field type in JSON terms.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("an integer from 0 to %d", ^uint64(0)>>(64-t.Bits()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Slice: // only []string fields exist
		return "an array of strings"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// fieldType is the type of t's field with JSON name name (embedded
// structs searched too), nil if there is none.
func fieldType(t reflect.Type, name string) reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && f.Type.Kind() == reflect.Struct:
			if ft := fieldType(f.Type, name); ft != nil {
				return ft
			}
		case tag == name:
			return f.Type
		}
	}
	return nil
}
