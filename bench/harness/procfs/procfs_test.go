package procfs

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const statusText = `Name:	wsgate
Umask:	0022
State:	S (sleeping)
VmPeak:	 1265520 kB
VmRSS:	   23456 kB
RssAnon:	   18000 kB
Threads:	7
SigQ:	0/95644
`

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus([]byte(statusText))
	if err != nil {
		t.Fatal(err)
	}
	if st.RSSBytes != 23456<<10 || st.Threads != 7 {
		t.Fatalf("got %+v", st)
	}
	if _, err := ParseStatus([]byte("Name:\tx\nState:\tZ (zombie)\nThreads:\t1\n")); err == nil {
		t.Fatal("a status without VmRSS parsed")
	}
	if _, err := ParseStatus([]byte("VmRSS:\t12 MB\nThreads:\t1\n")); err == nil {
		t.Fatal("a VmRSS in another unit parsed")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	line := "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 731 269 0 0 20 0 9 0 1000 123456 789 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	u, s, err := ParseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if u != 731 || s != 269 {
		t.Fatalf("utime %d stime %d, want 731 269", u, s)
	}
	if ticks(u+s) != 10*time.Second {
		t.Fatalf("1000 ticks = %v, want 10s", ticks(u+s))
	}
	for _, bad := range []string{"4242 no name 1 2 3", "1 (x) S 1 2"} {
		if _, _, err := ParseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseHostCPU(t *testing.T) {
	stat := "cpu  631638 27872 483055 10009841 4376 10 87881 500 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n"
	h, err := ParseHostCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	// user + nice + system + irq + softirq; not idle, iowait or steal.
	if want := ticks(631638 + 27872 + 483055 + 10 + 87881); h.Busy != want {
		t.Fatalf("busy %v, want %v", h.Busy, want)
	}
	if h.Softirq != ticks(87881) {
		t.Fatalf("softirq %v, want %v", h.Softirq, ticks(87881))
	}
	for _, bad := range []string{"", "cpu 1 2 3\n", "intr 1 2 3 4 5 6 7 8\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := ParseHostCPU([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseIO(t *testing.T) {
	io, err := ParseIO([]byte("rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 12345\nread_bytes: 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if io.SyscR != 10 || io.SyscW != 12345 {
		t.Fatalf("got %+v", io)
	}
	if _, err := ParseIO([]byte("rchar: 1\n")); err == nil {
		t.Fatal("io without syscw parsed")
	}
}

func TestParseSockstat(t *testing.T) {
	text := "sockets: used 20\nTCP: inuse 4 orphan 1 tw 57 alloc 6 mem 3\nUDP: inuse 0 mem 0\n"
	s, err := ParseSockstat([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if s != (Sockstat{InUse: 4, Orphan: 1, TimeWait: 57, Alloc: 6, MemPages: 3}) {
		t.Fatalf("got %+v", s)
	}
	if _, err := ParseSockstat([]byte("UDP: inuse 0 mem 0\n")); err == nil {
		t.Fatal("sockstat without TCP parsed")
	}
}

func TestParseSlabBytes(t *testing.T) {
	text := `slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
TCP                  150    168   2432   13    8 : tunables    0    0    0 : slabdata     12     12      0
filp                4000   4096    256   16    1 : tunables    0    0    0 : slabdata    256    256      0
`
	got, err := ParseSlabBytes([]byte(text), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(12*8*4096 + 256*1*4096); got != want {
		t.Fatalf("got %d, want %d", got, want)
	}
	if _, err := ParseSlabBytes([]byte("slabinfo - version: 2.1\nTCP 1 2 3\n"), 4096); err == nil {
		t.Fatal("a short line parsed")
	}
}

func TestParseListenStats(t *testing.T) {
	text := "TcpExt: SyncookiesSent ListenOverflows ListenDrops TW\nTcpExt: 0 17 19 5\nMPTcpExt: ListenOverflows\nMPTcpExt: 99\n"
	s, err := ParseListenStats([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if s != (ListenStats{Overflows: 17, Drops: 19}) {
		t.Fatalf("got %+v", s)
	}
	if _, err := ParseListenStats([]byte("IpExt: A\nIpExt: 1\n")); err == nil {
		t.Fatal("netstat without TcpExt parsed")
	}
}

func TestMachineParsers(t *testing.T) {
	if m := ParseCPUModel([]byte("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t: fpu\n")); m != "Intel(R) Xeon(R) Processor" {
		t.Errorf("model %q", m)
	}
	if b := ParseMemTotal([]byte("MemTotal:       24576000 kB\nMemFree: 1 kB\n")); b != 24576000<<10 {
		t.Errorf("mem %d", b)
	}
	if b, err := ParseMemAvailable([]byte("MemTotal: 8 kB\nMemAvailable:   23442844 kB\n")); err != nil || b != 23442844<<10 {
		t.Errorf("available %d, %v", b, err)
	}
	for _, bad := range []string{"MemTotal: 8 kB\n", "MemAvailable: 12 MB\n", "MemAvailable: -1 kB\n"} {
		if _, err := ParseMemAvailable([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if l, err := ParseLoadAvg([]byte("2.80 3.75 3.27 5/300 1234\n")); err != nil || l != 2.8 {
		t.Errorf("loadavg %v %v", l, err)
	}
	if _, err := ParseLoadAvg(nil); err == nil {
		t.Error("empty loadavg parsed")
	}
}

// TestRootReadsFiles checks the Read functions against a fake /proc and
// the real one for this very process.
func TestRootReadsFiles(t *testing.T) {
	dir := t.TempDir()
	pid := 77
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	pd := filepath.Join(dir, strconv.Itoa(pid))
	must(os.MkdirAll(filepath.Join(pd, "fd"), 0o755))
	for i := range 3 {
		must(os.WriteFile(filepath.Join(pd, "fd", strconv.Itoa(i)), nil, 0o644))
	}
	must(os.WriteFile(filepath.Join(pd, "status"), []byte(statusText), 0o644))
	r := Root(dir)
	if n, err := r.CountFDs(pid); err != nil || n != 3 {
		t.Fatalf("CountFDs = %d, %v", n, err)
	}
	if st, err := r.ReadStatus(pid); err != nil || st.Threads != 7 {
		t.Fatalf("ReadStatus = %+v, %v", st, err)
	}

	self := os.Getpid()
	if st, err := Proc.ReadStatus(self); err != nil || st.RSSBytes <= 0 || st.Threads <= 0 {
		t.Fatalf("own status %+v, %v", st, err)
	}
	if _, err := Proc.ReadCPU(self); err != nil {
		t.Fatal(err)
	}
	if io, err := Proc.ReadIO(self); err != nil || io.SyscR <= 0 {
		t.Fatalf("own io %+v, %v", io, err)
	}
	if _, err := Proc.ReadSockstat(); err != nil {
		t.Fatal(err)
	}
	if b, err := Proc.ReadMemAvailable(); err != nil || b <= 0 {
		t.Fatalf("MemAvailable %d, %v", b, err)
	}
	if _, err := Proc.ReadListenStats(); err != nil {
		t.Fatal(err)
	}
	if m := Proc.ReadMachine(); m.CPUs <= 0 || m.Kernel == "" || m.PageSize <= 0 {
		t.Fatalf("machine %+v", m)
	}
}

func TestCountTCPPorts(t *testing.T) {
	text := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" +
		"   1: 0A00007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n" +
		"   2: 0100007F:1F91 0100007F:0050 06 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1\n"
	for _, c := range []struct {
		ports []int
		want  TCPSockets
	}{{[]int{8080}, TCPSockets{Other: 2}}, {[]int{8081, 80}, TCPSockets{TimeWait: 1}}, {[]int{9}, TCPSockets{}}, {nil, TCPSockets{}}} {
		if n, err := CountTCPPorts([]byte(text), c.ports...); err != nil || n != c.want {
			t.Errorf("ports %v: %+v, %v; want %+v", c.ports, n, err, c.want)
		}
	}
	six := "  sl  local_address                         remote_address\n" +
		"   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A\n"
	if n, err := CountTCPPorts([]byte(six), 8080); err != nil || n.Other != 1 {
		t.Errorf("tcp6: %+v, %v", n, err)
	}
	if _, err := CountTCPPorts([]byte("hdr\n 0: nocolon zz:zz 0A\n"), 1); err == nil {
		t.Error("garbage parsed")
	}
	// Our own listener shows up in the real file.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, err := Proc.CountTCPSockets(l.Addr().(*net.TCPAddr).Port); err != nil || n.Other != 1 {
		t.Errorf("own listener: %+v, %v", n, err)
	}
}

// The CPU clock counts what stat counts, at a finer grain, for this
// process and for another one; a gone pid is an error, not zero.
func TestProcessCPUClock(t *testing.T) {
	self := os.Getpid()
	c0, err := processCPUClock(self)
	if err != nil {
		t.Fatal(err)
	}
	// Burn 30 ms of CPU, however busy the machine.
	clock := c0
	for deadline := time.Now().Add(10 * time.Second); clock-c0 < 30*time.Millisecond && time.Now().Before(deadline); {
		if clock, err = processCPUClock(self); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(Proc.pidPath(self, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	u, s, err := ParseStatCPU(b)
	if err != nil {
		t.Fatal(err)
	}
	// stat is read after the clock, in whole ticks.
	if stat := ticks(u + s); clock-c0 < 30*time.Millisecond || stat < clock-20*time.Millisecond || stat > clock+200*time.Millisecond {
		t.Fatalf("clock %v (from %v), stat %v", clock, c0, stat)
	}

	// A child that works a little, then sleeps: its clock shows the work
	// (polled: a freshly started child can read 0 at first).
	child := exec.Command("sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 10")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pid := child.Process.Pid
	var d time.Duration
	for deadline := time.Now().Add(5 * time.Second); d == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if d, err = Proc.ReadCPU(pid); err != nil {
			t.Fatal(err)
		}
	}
	if d <= 0 || d > 5*time.Second || d%(time.Second/UserHZ) == 0 {
		t.Fatalf("child's CPU %v", d)
	}
	_ = child.Process.Kill()
	_ = child.Wait()
	if _, err := processCPUClock(pid); err == nil {
		t.Fatal("a reaped pid's clock read without error")
	}
}
