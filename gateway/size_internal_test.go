package gateway

import (
	"testing"
	"unsafe"
)

// TestIdleFootprint keeps the per-connection structs small: an idle
// connection is a conn (and, on /ws, a session) and nothing else. Both
// sit exactly at a malloc size class (128 and 80 bytes): one more field
// costs a whole class (144, 96).
func TestIdleFootprint(t *testing.T) {
	conn, sess := unsafe.Sizeof(conn{}), unsafe.Sizeof(session{})
	t.Logf("conn %d B, session %d B", conn, sess)
	if conn > 128 || sess > 80 {
		t.Fatalf("conn %d B, session %d B: an idle connection got fat", conn, sess)
	}
}
