// Package freeport finds loopback addresses for processes that tests and
// benchmarks start, which must be told a port before they bind it.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// Addr returns a 127.0.0.1 address whose port was free a moment ago, for
// a process that binds it right after. The port comes from below the
// kernel's ephemeral range when there is room: a port from inside it
// (what binding port 0 gives) can become some connection's source port in
// the meantime, and the process then fails to bind it. A port chosen at
// random from below the range can only be lost to another process that
// binds that very port. When the range starts too low for that (wsbench
// million widens it to 1024–65535 while it runs), the kernel picks the
// port as before, with the old risk.
func Addr() (string, error) {
	if lo := ephemeralLow(); lo-1 > minPort {
		for range 64 {
			addr := fmt.Sprintf("127.0.0.1:%d", minPort+rand.IntN(lo-minPort))
			if l, err := net.Listen("tcp4", addr); err == nil {
				_ = l.Close()
				return addr, nil
			}
		}
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr, nil
}

// minPort is the lowest port Addr picks: well-known services below it are
// left alone.
const minPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}
