package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestAddrBelowEphemeralRange: the port is bindable and, when the kernel's
// ephemeral range leaves room below it, outside that range.
func TestAddrBelowEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	for range 20 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		if lo-1 > minPort && (n < minPort || n >= lo) {
			t.Fatalf("port %d outside [%d, %d)", n, minPort, lo)
		}
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Fatalf("bind %s: %v", addr, err)
		}
		l.Close()
	}
}
