package gateway_test

import "testing"

// skipSlow skips, under go test -short, a test that holds real sockets for
// seconds (timeouts, heartbeats, storms, thousands of subscribers): the
// unit layer (-short) runs in seconds; make test runs everything.
func skipSlow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow socket-level test (runs without -short)")
	}
}
