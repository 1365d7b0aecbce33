package gateway

import (
	"sync/atomic"

	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// permessage-deflate on a connection (README, "Compression"). The upgrade
// negotiates it (upgrade.go, deflate.Negotiate); from then on the
// connection's decoder inflates RSV1 messages with the server's pooled,
// counted inflater, and data frames the connection builds itself (replies,
// echoes) are compressed when worth it. Publications are compressed by the
// hub, once for all subscribers (session.DeflateWindow, hub.Deflater).
//
// What was negotiated is a deflate.Window (0: nothing; else the client's
// server_max_window_bits, 15 when it stated none), and where it lives
// costs nothing at rest: a /ws session keeps it in its padding (set before
// the session is published, never written again); the transport keeps it
// in the high nibble of its requests byte, under mu, for the echo
// endpoint. A connection with a window under 15 gets compressed frames
// only for messages of at most 2^window bytes (deflate.Window explains
// why that honours the window exactly); longer ones go out plain.

// windowShift places the window (4 bits) in conn.requests, above the
// requests proper: it is not a request. Set once under mu at the upgrade;
// the conn has no spare byte for it, and onRequests keeps it.
const (
	windowShift       = 4
	windowMask  uint8 = 0xF << windowShift
)

// countedInflate returns the decoders' Inflate: deflate.Inflate, counted
// in n. The server makes it once (Server.inflateFn).
func countedInflate(n *atomic.Int64) func(dst, compressed []byte, limit int) ([]byte, error) {
	return func(dst, compressed []byte, limit int) ([]byte, error) {
		n.Add(1)
		return deflate.Inflate(dst, compressed, limit)
	}
}

// dataFrame builds a data frame for payload: compressed when negotiated,
// the payload is at least --compression-min-bytes, fits the client's
// window and shrinks; plain otherwise (RSV1 is per message).
func dataFrame(op wsframe.Opcode, payload []byte, w deflate.Window, minBytes int) []byte {
	if len(payload) >= minBytes && w.Fits(len(payload)) {
		if f, ok := deflate.Frame(op, payload); ok {
			return f
		}
	}
	return wsframe.Frame(op, payload)
}

// A session is the hub's subscriber; with Deflate it gets compressed frames.
var _ hub.Deflater = (*session)(nil)
