package codec

import (
	"fmt"
	"math"
)

// The list fields of server frames: a history reply's publications and a
// presence reply's clients.

// decodePublications reads a history reply's array of {offset, data}.
func decodePublications(w frameWalker, f *ServerFrame, st *frameState) error {
	k, err := w.peek()
	if err != nil {
		return err
	}
	if k != kindArray {
		return failValue(w, st, "publications", k, "array")
	}
	f.HasPublications = true
	grow := func(n int) { // a repeated key: the last one wins (§2)
		if cap(f.Publications) < n {
			f.Publications = make([]HistoryPublication, 0, n)
		}
		f.Publications = f.Publications[:0]
	}
	return decodeObjects(w, st, "publications[]", grow, func(dry bool) error {
		return decodePublication(w, f, st, dry)
	})
}

// decodeObjects reads an array of maps/objects twice: first dry, to
// validate and count them, then — unless a field failed, which fails the
// frame — to decode them into room grown for exactly that many. Memory is
// never taken from a declared count or by repeated doubling, so it stays a
// small multiple of the frame's size (each element needs a few bytes).
// elem reads one element's keys, the walker just inside it.
func decodeObjects(w frameWalker, st *frameState, field string, grow func(n int), elem func(dry bool) error) error {
	start := w.save()
	n := 0
	for _, dry := range []bool{true, false} {
		if !dry {
			if st.fieldErr != nil {
				return nil
			}
			grow(n)
			w.restore(start)
		}
		if err := w.beginArray(); err != nil {
			return err
		}
		for {
			more, err := w.nextElem()
			if err != nil {
				return err
			}
			if !more {
				break
			}
			k, err := w.peek()
			if err != nil {
				return err
			}
			if k != kindObject {
				if err := failValue(w, st, field, k, "map"); err != nil {
					return err
				}
				continue
			}
			if err := w.beginObject(); err != nil {
				return err
			}
			if err := elem(dry); err != nil {
				return err
			}
			n++
		}
	}
	return nil
}

// decodePublication reads one {offset, data|b64}; dry only validates
// (base64 is decoded on the second pass).
func decodePublication(w frameWalker, f *ServerFrame, st *frameState, dry bool) error {
	var p HistoryPublication
	hasOffset, hasData, hasB64 := false, false, false
	err := decodeFields(w, st, "publications[].", maxDataNesting, func(key []byte, v fieldValue) (err error) {
		switch string(key) {
		case "offset":
			p.Offset, hasOffset, err = v.uint(math.MaxUint64)
		case "data":
			p.Data, hasData, err = v.data()
		case "b64":
			if v.json && !dry {
				var d []byte
				var ok bool
				if d, ok, err = v.b64(&f.scratch); ok {
					p.Data = d
				}
				hasB64 = ok
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	switch {
	case !hasOffset:
		st.fail("publications[].offset", ErrMissing)
	case hasData && hasB64:
		st.fail("publications[].b64", fmt.Errorf("%w: both data and b64", ErrInvalid))
	}
	if !dry {
		f.Publications = append(f.Publications, p)
	}
	return nil
}

// decodeClients reads "clients": a presence reply's array of {client,
// user}, or a presence_stats reply's count.
func decodeClients(w frameWalker, f *ServerFrame, st *frameState) error {
	k, err := w.peek()
	if err != nil {
		return err
	}
	if k != kindArray {
		v, err := w.value(maxNesting)
		if err != nil {
			return err
		}
		var ok bool
		if f.NumClients, ok, err = v.uint(math.MaxUint64); err != nil {
			st.fail("clients", fmt.Errorf("%w (an array or a count)", err))
		}
		f.HasStats = f.HasStats || ok
		return nil
	}
	f.HasClients = true
	grow := func(n int) { // a repeated key: the last one wins (§2)
		if cap(f.Clients) < n {
			f.Clients = make([]ClientInfo, 0, n)
		}
		f.Clients = f.Clients[:0]
	}
	return decodeObjects(w, st, "clients[]", grow, func(dry bool) error {
		return decodeClient(w, f, st, dry)
	})
}

func decodeClient(w frameWalker, f *ServerFrame, st *frameState, dry bool) error {
	var client, user []byte
	hasClient := false
	err := decodeFields(w, st, "clients[].", maxNesting, func(key []byte, v fieldValue) (err error) {
		switch string(key) {
		case "client":
			client, hasClient, err = v.str(&f.scratch)
		case "user":
			user, _, err = v.str(&f.scratch)
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hasClient {
		st.fail("clients[].client", ErrMissing)
	}
	if !dry {
		f.Clients = append(f.Clients, ClientInfo{Client: string(client), User: string(user)})
	}
	return nil
}
