package sysctl

import (
	"errors"
	"math"
	"testing"
)

func TestParseInts(t *testing.T) {
	good := []struct {
		in   string
		n    int
		want []int64
	}{
		{"4096\n", 1, []int64{4096}},
		{"32768\t60999\n", 2, []int64{32768, 60999}},
		{"288459\t384612\t576918\n", 3, []int64{288459, 384612, 576918}},
		{"9223372036854775807\n", 1, []int64{math.MaxInt64}},
	}
	for _, tc := range good {
		got, err := parseInts(tc.in, tc.n)
		if err != nil {
			t.Errorf("parseInts(%q, %d): %v", tc.in, tc.n, err)
			continue
		}
		for i := range tc.want {
			if got[i] != tc.want[i] {
				t.Errorf("parseInts(%q, %d) = %v, want %v", tc.in, tc.n, got, tc.want)
				break
			}
		}
	}
	bad := []struct {
		in string
		n  int
	}{
		{"", 1}, {"abc", 1}, {"1 2", 1}, {"1", 3}, {"-5", 1}, {"1.5", 1},
		{"99999999999999999999", 1},
	}
	for _, tc := range bad {
		if _, err := parseInts(tc.in, tc.n); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseInts(%q, %d) error = %v, want ErrMalformed", tc.in, tc.n, err)
		}
	}
}

func TestParseNoFile(t *testing.T) {
	soft, hard, err := parseNoFile(limitsFile("1024", "20000"))
	if err != nil || soft != 1024 || hard != 20000 {
		t.Errorf("parseNoFile = %d, %d, %v; want 1024, 20000, nil", soft, hard, err)
	}
	soft, hard, err = parseNoFile(limitsFile("unlimited", "unlimited"))
	if err != nil || soft != math.MaxInt64 || hard != math.MaxInt64 {
		t.Errorf("parseNoFile(unlimited) = %d, %d, %v", soft, hard, err)
	}
	for _, in := range []string{
		"",
		"Max processes 1 1 processes\n",
		"Max open files\n",
		"Max open files  20000\n",
		"Max open files  abc 20000 files\n",
		"Max open files  20000 -1 files\n",
	} {
		if _, _, err := parseNoFile(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseNoFile(%q) error = %v, want ErrMalformed", in, err)
		}
	}
}

func TestParseMemInfo(t *testing.T) {
	m, err := parseMemInfo("MemTotal:       24731708 kB\nMemFree:  1 kB\nMemAvailable:   24424676 kB\n")
	if err != nil || m.total != 24731708*1024 || m.available != 24424676*1024 {
		t.Errorf("parseMemInfo = %+v, %v", m, err)
	}
	// Kernels before 3.14 have no MemAvailable: still usable.
	m, err = parseMemInfo("MemTotal: 1024 kB\n")
	if err != nil || m.total != 1<<20 || m.available != -1 {
		t.Errorf("parseMemInfo without MemAvailable = %+v, %v", m, err)
	}
	for _, in := range []string{
		"",
		"MemFree: 1 kB\n",
		"MemTotal: lots kB\n",
		"MemTotal: 5 MB\n",
		"MemTotal: 5\n",
		"MemTotal: 1 kB\nMemAvailable: x kB\n",
		"MemTotal: 9223372036854775807 kB\n",
	} {
		if _, err := parseMemInfo(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseMemInfo(%q) error = %v, want ErrMalformed", in, err)
		}
	}
}

func TestSysctlPath(t *testing.T) {
	if got := sysctlPath("net.ipv4.tcp_mem"); got != "proc/sys/net/ipv4/tcp_mem" {
		t.Errorf("sysctlPath = %q", got)
	}
}

func TestArithmetic(t *testing.T) {
	if got := minus(100, 512); got != 0 {
		t.Errorf("minus(100, 512) = %d, want 0", got)
	}
	if got := mulSat(math.MaxInt64, 4096); got != math.MaxInt64 {
		t.Errorf("mulSat overflow = %d", got)
	}
	if got := ceilDiv(4097, 4096); got != 2 {
		t.Errorf("ceilDiv = %d", got)
	}
	if got := tcpMemPerConn(65536); got != 65536 {
		t.Errorf("tcpMemPerConn(64 KiB pages) = %d", got)
	}
	if got := tcpMemPerConn(4096); got != TCPMemBytesPerConn {
		t.Errorf("tcpMemPerConn(4 KiB pages) = %d", got)
	}
}
