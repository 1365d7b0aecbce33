package gateway_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/gateway"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// server that leaves a reader, writer or timer behind after shutdown (or a
// test that strands one) is a leak at a million connections. It removes
// the binaries the process tests built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { builds.Cleanup() }))
}

// startEcho starts a gateway with the raw echo endpoint /echo on a free
// loopback port and returns its "host:port". mutate, if not nil, adjusts the
// test defaults (64 KiB message limit). The server is shut down, and Serve
// waited for, when t's cleanup runs.
func startEcho(t *testing.T, mutate func(*gateway.Config)) string {
	t.Helper()
	return startServer(t, func(c *gateway.Config) {
		c.MaxMessageBytes = 64 << 10
		if mutate != nil {
			mutate(c)
		}
	}).Addr().String()
}
