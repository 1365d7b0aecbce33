package gateway

import (
	"testing"

	"github.com/wsgate/wsgate/gateway/deflate"
)

// TestWindowInRequests: the transport keeps the negotiated window in the
// spare high bits of its requests byte (the conn has no spare byte): every
// window survives the trip, and it shares no bit with a request.
func TestWindowInRequests(t *testing.T) {
	if uint8(requestDrain|requestKill)&windowMask != 0 {
		t.Fatalf("requests %#x overlap the window bits %#x", requestDrain|requestKill, windowMask)
	}
	for _, w := range []deflate.Window{deflate.NoWindow, 8, 9, 12, 15} {
		c := &conn{}
		c.requests = requestDrain | requestKill | uint8(w)<<windowShift
		if got := c.window(); got != w {
			t.Fatalf("window %d read back as %d", w, got)
		}
		c.requests &= windowMask // what onRequests keeps
		if got := c.window(); got != w || c.requests&^windowMask != 0 {
			t.Fatalf("window %d after the requests were taken: %d (requests %#x)", w, got, c.requests)
		}
	}
}
