package gateway

import (
	"testing"
	"unsafe"
)

// TestIdleFootprint keeps the per-connection structs small: an idle
// connection is a conn (and, on /ws, a session) and nothing else.
func TestIdleFootprint(t *testing.T) {
	conn, sess := unsafe.Sizeof(conn{}), unsafe.Sizeof(session{})
	t.Logf("conn %d B, session %d B", conn, sess)
	if conn > 256 || sess > 160 {
		t.Fatalf("conn %d B, session %d B: an idle connection got fat", conn, sess)
	}
}
