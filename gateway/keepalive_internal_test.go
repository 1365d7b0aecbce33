package gateway

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSetKeepalive reads back what setKeepalive asks of the kernel, in the
// kernel's units: seconds for the probes, milliseconds for the verdict.
func TestSetKeepalive(t *testing.T) {
	// Keepalive options are per socket; an unconnected one takes them too.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	setKeepalive(fd, Config{PingInterval: 25 * time.Second, PongTimeout: 10 * time.Second})
	got := map[string]int{}
	for name, opt := range map[string][2]int{
		"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE},
		"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
		"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
		"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
	} {
		if got[name], err = unix.GetsockoptInt(fd, opt[0], opt[1]); err != nil {
			t.Errorf("getsockopt %s: %v", name, err)
		}
	}
	want := map[string]int{"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 25, "TCP_KEEPINTVL": 3, "TCP_USER_TIMEOUT": 35000}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %d, want %d", name, got[name], w)
		}
	}
}
