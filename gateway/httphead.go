package gateway

import (
	"bytes"
	"fmt"
)

// checkRequestHead applies the RFC 7230 / RFC 6455 rules gobwas/ws does not
// enforce to a complete request head (request line, header lines, blank
// line). It returns "" when the head is acceptable, else why it must be
// answered 400. Each rule closes a door to request smuggling or to a
// proxy and wsgate disagreeing about what was sent:
//
//   - no control characters (NUL, a bare CR or LF, DEL…) anywhere; a tab
//     only inside a header value;
//   - a header name is a token immediately followed by ':' (RFC 7230 §3.2.4:
//     whitespace before the colon must be answered 400), and no line folding;
//   - no body: Transfer-Encoding of any kind, or a Content-Length other
//     than 0, on an upgrade GET (RFC 6455 §4.1: the request is a GET with
//     no body, and what follows the head is WebSocket frames);
//   - the singleton headers of the handshake appear once: a second Host,
//     Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version, Origin,
//     Content-Length or Authorization is ambiguous, so refused.
func checkRequestHead(head []byte) string {
	body, ok := bytes.CutSuffix(head, []byte("\r\n\r\n"))
	if !ok {
		return "request head does not end with an empty line"
	}
	line, rest, _ := bytes.Cut(body, []byte("\r\n"))
	if why := checkRequestLine(line); why != "" {
		return why
	}
	var seen singletons
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, why := splitHeaderLine(line)
		if why != "" {
			return why
		}
		if why := seen.add(name); why != "" {
			return why
		}
		if why := checkBodyHeader(name, value); why != "" {
			return why
		}
	}
	return ""
}

// checkRequestLine checks "METHOD SP request-target SP HTTP-version" for
// stray bytes; gobwas checks the method and version themselves.
func checkRequestLine(line []byte) string {
	if bytes.Count(line, []byte(" ")) != 2 {
		return "malformed request line"
	}
	for _, b := range line {
		if b <= ' ' && b != ' ' || b == 0x7F {
			return fmt.Sprintf("control character %#02x in the request line", b)
		}
	}
	return ""
}

// splitHeaderLine splits "name: value" and checks both parts.
func splitHeaderLine(line []byte) (name, value []byte, why string) {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return nil, nil, "folded header line (obs-fold)"
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return nil, nil, "header line without a colon"
	}
	if len(name) == 0 {
		return nil, nil, "empty header name"
	}
	for _, b := range name {
		if b == ' ' || b == '\t' {
			return nil, nil, "whitespace between a header name and its colon"
		}
		if !isTokenChar(b) {
			return nil, nil, fmt.Sprintf("byte %#02x in a header name", b)
		}
	}
	for _, b := range value {
		if b < ' ' && b != '\t' || b == 0x7F {
			return nil, nil, fmt.Sprintf("control character %#02x in header %s", b, name)
		}
	}
	return name, bytes.Trim(value, " \t"), ""
}

// checkBodyHeader refuses headers that announce a request body.
func checkBodyHeader(name, value []byte) string {
	switch {
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		return "Transfer-Encoding on an upgrade request"
	case bytes.EqualFold(name, []byte("Content-Length")) && string(value) != "0":
		return "a body (Content-Length other than 0) on an upgrade request"
	}
	return ""
}

// singletons remembers which of the handshake's one-only headers were seen.
type singletons uint8

// singletonHeaders may appear at most once in an upgrade request.
var singletonHeaders = [...]string{
	"Host", "Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Origin", "Content-Length", "Authorization",
}

func (s *singletons) add(name []byte) string {
	for i, h := range singletonHeaders {
		if bytes.EqualFold(name, []byte(h)) {
			if *s&(1<<i) != 0 {
				return "duplicate " + h + " header"
			}
			*s |= 1 << i
			return ""
		}
	}
	return ""
}

// isTokenChar reports whether b may appear in an RFC 7230 token (tchar).
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
}
