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

// CountTCPSockets counts the sockets in /proc/net/tcp and /proc/net/tcp6
// (any state, TIME_WAIT included) whose local or remote port is one of
// ports: what a run that used those ports left behind.
func (r Root) CountTCPSockets(ports ...int) (int, error) {
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(r.path("net", f))
		if err != nil {
			if f == "tcp6" && os.IsNotExist(err) {
				continue // no IPv6
			}
			return 0, err
		}
		c, err := CountTCPPorts(b, ports...)
		if err != nil {
			return 0, fmt.Errorf("procfs: net/%s: %w", f, err)
		}
		n += c
	}
	return n, nil
}

// CountTCPPorts counts the lines of a /proc/net/tcp(6) text whose local or
// remote port (hex after the last ':' of the address) is one of ports.
func CountTCPPorts(b []byte, ports ...int) (int, error) {
	want := map[int64]bool{}
	for _, p := range ports {
		want[int64(p)] = true
	}
	n := 0
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue // the header, or the empty last line
		}
		for _, addr := range f[1:3] {
			colon := strings.LastIndexByte(addr, ':')
			port, err := strconv.ParseInt(addr[colon+1:], 16, 32)
			if colon < 0 || err != nil {
				return 0, fmt.Errorf("address %q", addr)
			}
			if want[port] {
				n++
				break
			}
		}
	}
	return n, nil
}
