package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadMemAvailable returns MemAvailable from /proc/meminfo in bytes: what
// the kernel estimates can still be allocated without swapping. A run that
// fills the host watches it to stop before other work starves.
func (r Root) ReadMemAvailable() (int64, error) {
	b, err := os.ReadFile(r.path("meminfo"))
	if err != nil {
		return 0, err
	}
	return ParseMemAvailable(b)
}

// ParseMemAvailable finds "MemAvailable: N kB" in a /proc/meminfo text.
func ParseMemAvailable(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("MemAvailable:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("procfs: MemAvailable line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("procfs: MemAvailable %q", f[0])
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("procfs: meminfo has no MemAvailable line")
}

// TCPSockets counts sockets by kind.
type TCPSockets struct {
	TimeWait int // TIME_WAIT: gone by themselves within 60 s
	Other    int // every other state
}

// CountTCPSockets counts the sockets in /proc/net/tcp and /proc/net/tcp6
// whose local or remote port is one of ports: what a run that used those
// ports left behind.
func (r Root) CountTCPSockets(ports ...int) (TCPSockets, error) {
	var n TCPSockets
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(r.path("net", f))
		if err != nil {
			if f == "tcp6" && os.IsNotExist(err) {
				continue // no IPv6
			}
			return n, err
		}
		c, err := CountTCPPorts(b, ports...)
		if err != nil {
			return n, fmt.Errorf("procfs: net/%s: %w", f, err)
		}
		n.TimeWait += c.TimeWait
		n.Other += c.Other
	}
	return n, nil
}

// tcpTimeWait is the kernel's TCP_TIME_WAIT state (the "st" column, hex).
const tcpTimeWait = "06"

// CountTCPPorts counts the lines of a /proc/net/tcp(6) text whose local or
// remote port (hex after the last ':' of the address) is one of ports.
func CountTCPPorts(b []byte, ports ...int) (TCPSockets, error) {
	want := map[int64]bool{}
	for _, p := range ports {
		want[int64(p)] = true
	}
	var n TCPSockets
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 {
			continue // the header, or the empty last line
		}
		for _, addr := range f[1:3] {
			colon := strings.LastIndexByte(addr, ':')
			port, err := strconv.ParseInt(addr[colon+1:], 16, 32)
			if colon < 0 || err != nil {
				return TCPSockets{}, fmt.Errorf("address %q", addr)
			}
			if want[port] {
				if f[3] == tcpTimeWait {
					n.TimeWait++
				} else {
					n.Other++
				}
				break
			}
		}
	}
	return n, nil
}
