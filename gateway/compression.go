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
// hub, once for all subscribers (session.Deflate, hub.Deflater).
//
// Where the negotiated flag lives costs nothing at rest: a /ws session
// keeps it in its padding (set before the session is published, never
// written again); the transport keeps it as flagDeflate in its requests
// byte, under mu, for the echo endpoint.

// flagDeflate, in conn.requests, is not a request: it says the connection
// negotiated permessage-deflate. Set once under mu at the upgrade; the
// conn has no spare byte for it, and onRequests keeps it.
const flagDeflate uint8 = 1 << 7

// countedInflate returns the decoders' Inflate: deflate.Inflate, counted
// in n. The server makes it once (Server.inflateFn).
func countedInflate(n *atomic.Int64) func(dst, compressed []byte, limit int) ([]byte, error) {
	return func(dst, compressed []byte, limit int) ([]byte, error) {
		n.Add(1)
		return deflate.Inflate(dst, compressed, limit)
	}
}

// dataFrame builds a data frame for payload: compressed when negotiated
// and the payload is at least --compression-min-bytes and shrinks, plain
// otherwise (RSV1 is per message).
func dataFrame(op wsframe.Opcode, payload []byte, negotiated bool, minBytes int) []byte {
	if negotiated && len(payload) >= minBytes {
		if f, ok := deflate.Frame(op, payload); ok {
			return f
		}
	}
	return wsframe.Frame(op, payload)
}

// A session is the hub's subscriber; with Deflate it gets compressed frames.
var _ hub.Deflater = (*session)(nil)
