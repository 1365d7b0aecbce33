// Package deflate is wsgate's permessage-deflate (RFC 7692): the
// handshake negotiation, a pooled compressor that builds shareable
// compressed frames and a pooled, size-bounded decompressor.
//
// wsgate always negotiates no context takeover in both directions
// (server_no_context_takeover and client_no_context_takeover): no
// compressor or decompressor state survives a message, so a compressed
// frame does not depend on the connection it is sent on and the hub can
// compress a publication once for all its subscribers (DESIGN.md,
// invariant 4), and a connection at rest holds no zlib state. Only whether
// a compressed frame may be sent depends on the connection: a client that
// limited the server's window gets it for short enough messages (Window).
package deflate

import (
	"bytes"
)

// ExtensionName is the extension token of RFC 7692.
const ExtensionName = "permessage-deflate"

// ResponsePlain answers an accepted offer that stated no
// server_max_window_bits: both sides without context takeover.
// client_max_window_bits is never sent: the decompressor accepts any window
// up to 15 bits, the default (RFC 7692 §7.1.2.2).
const ResponsePlain = ExtensionName + "; server_no_context_takeover; client_no_context_takeover"

// windowResponses answer offers that stated server_max_window_bits=8…15:
// §7.1.2.1 requires the response to state it then, with the same or a
// smaller value; wsgate echoes the client's.
var windowResponses = [...]string{
	ResponsePlain + "; server_max_window_bits=8",
	ResponsePlain + "; server_max_window_bits=9",
	ResponsePlain + "; server_max_window_bits=10",
	ResponsePlain + "; server_max_window_bits=11",
	ResponsePlain + "; server_max_window_bits=12",
	ResponsePlain + "; server_max_window_bits=13",
	ResponsePlain + "; server_max_window_bits=14",
	ResponsePlain + "; server_max_window_bits=15",
}

// Responses lists every response Negotiate may return, so a caller can
// prepare its header lines once.
func Responses() []string {
	return append([]string{ResponsePlain}, windowResponses[:]...)
}

// Parameters of RFC 7692 §7.1 and the window sizes it allows.
const (
	maxWindowBits   = 15 // compress/flate always uses a 32 KiB window
	minWindowBits   = 8
	paramServerNCT  = "server_no_context_takeover"
	paramClientNCT  = "client_no_context_takeover"
	paramServerBits = "server_max_window_bits"
	paramClientBits = "client_max_window_bits"
)

// Negotiate answers the Sec-WebSocket-Extensions header values of an
// upgrade request (each value a comma-separated list of offers, the
// client's preference first). It accepts the first permessage-deflate
// offer it can meet and returns the response header value and the window
// agreed (see Window); w is NoWindow, and response "", when there is none.
// An offer that is malformed is declined (RFC 7692 §5: the server declines
// by not answering it), never a reason to fail the handshake: an unknown
// parameter, a duplicate one, a value where none is allowed, a window
// size outside 8–15 (§7.1.2). Every well-formed offer can be met: any
// server_max_window_bits is honoured (Window), any client_max_window_bits
// is accepted (the decompressor takes any window up to 15 bits).
//
// A malformed list (an unterminated quoted string) is declined as a
// whole, since where its offers start is no longer known.
func Negotiate(values [][]byte) (response string, w Window) {
	for _, v := range values {
		for len(v) > 0 {
			var offer []byte
			var ok bool
			offer, v, ok = nextOffer(v)
			if !ok {
				return "", NoWindow
			}
			if resp, win := answer(offer); win.Negotiated() {
				return resp, win
			}
		}
	}
	return "", NoWindow
}

// nextOffer splits the first offer off an extension list, honouring
// quoted strings (a comma inside quotes does not end an offer).
func nextOffer(list []byte) (offer, rest []byte, ok bool) {
	quoted := false
	for i := 0; i < len(list); i++ {
		switch c := list[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return list[:i], list[i+1:], true
		}
	}
	return list, nil, !quoted
}

// offerParams records what an offer asked for.
type offerParams struct {
	seen       uint8 // one bit per known parameter, to refuse duplicates
	serverBits int   // 0: not stated
}

// answer checks one offer ("permessage-deflate; p1; p2=v") and returns
// the response and window when it can be accepted.
func answer(offer []byte) (string, Window) {
	name, params, _ := bytes.Cut(offer, []byte(";"))
	if !bytes.EqualFold(bytes.Trim(name, " \t"), []byte(ExtensionName)) {
		return "", NoWindow
	}
	var p offerParams
	for len(params) > 0 {
		var param []byte
		param, params = cutParam(params)
		if !p.add(param) {
			return "", NoWindow
		}
	}
	if p.serverBits == 0 {
		return ResponsePlain, maxWindowBits
	}
	// add accepted only 8–15.
	return windowResponses[p.serverBits-minWindowBits], Window(p.serverBits)
}

// cutParam splits the first ';'-separated parameter off, honouring quotes.
func cutParam(params []byte) (param, rest []byte) {
	quoted := false
	for i := 0; i < len(params); i++ {
		switch c := params[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			return params[:i], params[i+1:]
		}
	}
	return params, nil
}

// add records one parameter and reports whether it is valid.
func (p *offerParams) add(param []byte) bool {
	key, value, hasValue := bytes.Cut(param, []byte("="))
	key = bytes.Trim(key, " \t")
	value, okValue := unquote(bytes.Trim(value, " \t"))
	var bit uint8
	switch string(key) {
	case paramServerNCT:
		bit = 1
		if hasValue {
			return false
		}
	case paramClientNCT:
		bit = 2
		if hasValue {
			return false
		}
	case paramServerBits:
		bit = 4
		bits, ok := windowBits(value)
		if !hasValue || !okValue || !ok {
			return false // §7.1.2.1: a value is required
		}
		p.serverBits = bits
	case paramClientBits:
		bit = 8
		if _, ok := windowBits(value); hasValue && (!okValue || !ok) {
			return false // §7.1.2.2: the value is optional
		}
	default:
		return false
	}
	if p.seen&bit != 0 {
		return false // §7.1: a parameter appears at most once
	}
	p.seen |= bit
	return true
}

// unquote removes a quoted-string's quotes and escapes (§7.1: the value
// must then be a token, which windowBits checks).
func unquote(v []byte) ([]byte, bool) {
	if len(v) == 0 || v[0] != '"' {
		return v, true
	}
	if len(v) < 2 || v[len(v)-1] != '"' {
		return nil, false
	}
	v = v[1 : len(v)-1]
	if bytes.IndexByte(v, '\\') < 0 {
		return v, true
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		out = append(out, v[i])
	}
	return out, true
}

// windowBits parses a window size: 1*DIGIT from 8 to 15, no leading zero
// (§7.1.2.1).
func windowBits(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= minWindowBits && n <= maxWindowBits
}
