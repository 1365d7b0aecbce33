package loadclient

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strings"
)

// maxResponseHead bounds the server's 101 response head; a bigger one fails
// the dial instead of growing a buffer without end.
const maxResponseHead = 8 << 10

// websocketGUID is the RFC 6455 constant mixed into Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// requestTemplate is the upgrade request of every connection in a pool;
// only the key differs, so it is built once as a head and a tail.
type requestTemplate struct {
	head        string // everything up to the key's value
	subprotocol string
}

const requestTail = "\r\n\r\n"

// deflateOffer is the permessage-deflate offer browsers send.
const deflateOffer = "permessage-deflate; client_max_window_bits"

func newRequestTemplate(host, path, subprotocol, origin string, compression bool) requestTemplate {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", path, host)
	if subprotocol != "" {
		fmt.Fprintf(&b, "Sec-WebSocket-Protocol: %s\r\n", subprotocol)
	}
	if origin != "" {
		fmt.Fprintf(&b, "Origin: %s\r\n", origin)
	}
	if compression {
		fmt.Fprintf(&b, "Sec-WebSocket-Extensions: %s\r\n", deflateOffer)
	}
	b.WriteString("Sec-WebSocket-Key: ")
	return requestTemplate{head: b.String(), subprotocol: subprotocol}
}

// build returns the request carrying key.
func (t requestTemplate) build(key string) []byte {
	req := make([]byte, 0, len(t.head)+len(key)+len(requestTail))
	req = append(req, t.head...)
	req = append(req, key...)
	return append(req, requestTail...)
}

// newKey returns a fresh random Sec-WebSocket-Key.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return base64.StdEncoding.EncodeToString(b[:])
}

// acceptFor computes the Sec-WebSocket-Accept a server must answer key with.
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// splitResponseHead finds the end of the response head in data: it returns
// the head (without the blank line) and the bytes after it, or ok false
// when the head is not complete yet.
func splitResponseHead(data []byte) (head, rest []byte, ok bool) {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, nil, false
	}
	return data[:end], data[end+4:], true
}

// checkResponse verifies a 101 response head against the key we sent and
// the subprotocol we offered (RFC 6455 §4.1, client requirements), and
// reports whether the server accepted permessage-deflate (offered says
// whether we offered it: an answer to an offer never made is an error).
func checkResponse(head []byte, key, subprotocol string, offered bool) (deflate bool, err error) {
	lines := strings.Split(string(head), "\r\n")
	status := strings.Fields(lines[0])
	if len(status) < 2 || !strings.HasPrefix(status[0], "HTTP/1.") || status[1] != "101" {
		return false, fmt.Errorf("upgrade refused: %q", lines[0])
	}
	var upgrade, connection, accept, proto, ext string
	var sawProto bool
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return false, fmt.Errorf("malformed response header line %q", line)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "upgrade":
			upgrade = value
		case "connection":
			connection = value
		case "sec-websocket-accept":
			accept = value
		case "sec-websocket-protocol":
			proto, sawProto = value, true
		case "sec-websocket-extensions":
			ext = value
		}
	}
	if ext != "" {
		name, _, _ := strings.Cut(ext, ";")
		if !offered || !strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") || strings.Contains(ext, ",") {
			return false, fmt.Errorf("server selected extensions %q that were not offered", ext)
		}
		deflate = true
	}
	switch {
	case !strings.EqualFold(upgrade, "websocket"):
		return false, fmt.Errorf("bad Upgrade header %q", upgrade)
	case !hasToken(connection, "upgrade"):
		return false, fmt.Errorf("bad Connection header %q", connection)
	case accept != acceptFor(key):
		return false, fmt.Errorf("bad Sec-WebSocket-Accept %q", accept)
	case subprotocol != "" && proto != subprotocol:
		return false, fmt.Errorf("server selected subprotocol %q, offered %q", proto, subprotocol)
	case subprotocol == "" && sawProto:
		return false, fmt.Errorf("server selected subprotocol %q that was not offered", proto)
	}
	return deflate, nil
}

// hasToken reports whether the comma-separated header value contains token
// (case-insensitively).
func hasToken(value, token string) bool {
	for part := range strings.SplitSeq(value, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}
