// Package procfs reads what the kernel reports about a process and about
// the host's sockets: the numbers wsbench compares between designs. Each
// file has a Parse function (pure, unit-tested on captured text) and a Read
// function that opens the real file.
package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// UserHZ is the unit of utime/stime in /proc/<pid>/stat. The kernel ABI
// fixes USER_HZ at 100 on every architecture Go supports on Linux, and
// sysconf(_SC_CLK_TCK) is not reachable without cgo.
const UserHZ = 100

// Root is the directory procfs is mounted on (Proc); tests point one at
// captured files.
type Root string

// Proc is the default procfs root.
const Proc Root = "/proc"

func (r Root) path(elem ...string) string {
	return string(r) + "/" + strings.Join(elem, "/")
}

func (r Root) pidPath(pid int, file string) string {
	return r.path(strconv.Itoa(pid), file)
}

// Status is the part of /proc/<pid>/status wsbench uses.
type Status struct {
	RSSBytes int64 // VmRSS
	Threads  int
}

// ReadStatus reads /proc/<pid>/status.
func (r Root) ReadStatus(pid int) (Status, error) {
	b, err := os.ReadFile(r.pidPath(pid, "status"))
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(b)
}

// ParseStatus parses the text of /proc/<pid>/status.
func ParseStatus(b []byte) (Status, error) {
	var st Status
	var haveRSS, haveThreads bool
	for line := range bytes.Lines(b) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		fields := strings.Fields(string(value))
		switch string(name) {
		case "VmRSS":
			if len(fields) != 2 || fields[1] != "kB" {
				return st, fmt.Errorf("procfs: VmRSS line %q", bytes.TrimSpace(line))
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return st, fmt.Errorf("procfs: VmRSS: %w", err)
			}
			st.RSSBytes, haveRSS = kb<<10, true
		case "Threads":
			if len(fields) != 1 {
				return st, fmt.Errorf("procfs: Threads line %q", bytes.TrimSpace(line))
			}
			n, err := strconv.Atoi(fields[0])
			if err != nil {
				return st, fmt.Errorf("procfs: Threads: %w", err)
			}
			st.Threads, haveThreads = n, true
		}
	}
	if !haveRSS || !haveThreads {
		return st, errors.New("procfs: status lacks VmRSS or Threads (zombie process?)")
	}
	return st, nil
}

// ReadCPU returns the process's user+system CPU time (all threads, dead
// ones included). On the real procfs it reads the process's CPU-time
// clock, in nanoseconds: /proc/<pid>/stat counts 10 ms ticks, too coarse
// for a short window (500 pings cost ~9 ms, often 0 ticks). A captured
// root, or a kernel that refuses the clock, gives stat's ticks.
func (r Root) ReadCPU(pid int) (time.Duration, error) {
	if r == Proc && pid > 0 { // 0 and -1 would name the caller's own clock
		if d, err := processCPUClock(pid); err == nil {
			return d, nil
		}
	}
	b, err := os.ReadFile(r.pidPath(pid, "stat"))
	if err != nil {
		return 0, err
	}
	u, s, err := ParseStatCPU(b)
	if err != nil {
		return 0, err
	}
	return ticks(u + s), nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * (time.Second / UserHZ) }

// processCPUClock reads pid's CPU-time clock (CPUCLOCK_SCHED: the sum of
// its threads' run time, dead ones included, as stat's utime+stime). The
// clock id is the kernel's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED);
// any process may read another's in its pid namespace.
func processCPUClock(pid int) (time.Duration, error) {
	const cpuclockSched = 2
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^pid<<3|cpuclockSched), &ts); err != nil {
		return 0, fmt.Errorf("procfs: cpu clock of %d: %w", pid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// ParseStatCPU returns utime and stime, in clock ticks, from the text of
// /proc/<pid>/stat. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from its last ')'.
func ParseStatCPU(b []byte) (utime, stime uint64, err error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, 0, errors.New("procfs: stat has no command name")
	}
	// After ")": field 3 (state) is rest[0]; utime is field 14, stime 15.
	rest := strings.Fields(string(b[end+1:]))
	if len(rest) < 13 {
		return 0, 0, fmt.Errorf("procfs: stat has %d fields after the name", len(rest))
	}
	if utime, err = strconv.ParseUint(rest[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("procfs: utime: %w", err)
	}
	if stime, err = strconv.ParseUint(rest[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("procfs: stime: %w", err)
	}
	return utime, stime, nil
}

// IO is the part of /proc/<pid>/io wsbench uses.
type IO struct {
	SyscR int64 // read-class system calls (read, readv, recv*)
	SyscW int64 // write-class system calls (write, writev, send*)
}

// ReadIO reads /proc/<pid>/io (needs ptrace access: same user or root).
func (r Root) ReadIO(pid int) (IO, error) {
	b, err := os.ReadFile(r.pidPath(pid, "io"))
	if err != nil {
		return IO{}, err
	}
	return ParseIO(b)
}

// ParseIO parses the text of /proc/<pid>/io.
func ParseIO(b []byte) (IO, error) {
	kv, err := parseColonPairs(b)
	if err != nil {
		return IO{}, err
	}
	r, okR := kv["syscr"]
	w, okW := kv["syscw"]
	if !okR || !okW {
		return IO{}, errors.New("procfs: io lacks syscr or syscw")
	}
	return IO{SyscR: r, SyscW: w}, nil
}

// parseColonPairs parses "name: integer" lines.
func parseColonPairs(b []byte) (map[string]int64, error) {
	out := map[string]int64{}
	for line := range bytes.Lines(b) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("procfs: %s: %w", name, err)
		}
		out[string(bytes.TrimSpace(name))] = v
	}
	return out, nil
}

// CountFDs returns how many descriptors the process has open.
func (r Root) CountFDs(pid int) (int, error) {
	f, err := os.Open(r.pidPath(pid, "fd"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// Sockstat is the TCP line of /proc/net/sockstat: host-wide, not per
// process.
type Sockstat struct {
	InUse, Orphan, TimeWait, Alloc int64
	MemPages                       int64 // pages charged to TCP buffers (queued data)
}

// ReadSockstat reads /proc/net/sockstat.
func (r Root) ReadSockstat() (Sockstat, error) {
	b, err := os.ReadFile(r.path("net", "sockstat"))
	if err != nil {
		return Sockstat{}, err
	}
	return ParseSockstat(b)
}

// ParseSockstat parses the text of /proc/net/sockstat.
func ParseSockstat(b []byte) (Sockstat, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("TCP:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f)%2 != 0 {
			return Sockstat{}, fmt.Errorf("procfs: sockstat TCP line %q", bytes.TrimSpace(line))
		}
		var s Sockstat
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return Sockstat{}, fmt.Errorf("procfs: sockstat %s: %w", f[i], err)
			}
			switch f[i] {
			case "inuse":
				s.InUse = v
			case "orphan":
				s.Orphan = v
			case "tw":
				s.TimeWait = v
			case "alloc":
				s.Alloc = v
			case "mem":
				s.MemPages = v
			}
		}
		return s, nil
	}
	return Sockstat{}, errors.New("procfs: sockstat has no TCP line")
}

// ReadSlabBytes returns the memory held by every kernel slab cache
// (slabs × pages per slab × page size) from /proc/slabinfo, which root can
// read. Socket structures, files, dentries and epoll items of a connection
// all live there, not in any process's RSS.
func (r Root) ReadSlabBytes(pageSize int) (int64, error) {
	b, err := os.ReadFile(r.path("slabinfo"))
	if err != nil {
		return 0, err
	}
	return ParseSlabBytes(b, pageSize)
}

// ParseSlabBytes sums num_slabs × pagesperslab × pageSize over the caches
// of a /proc/slabinfo (version 2.1) text.
func ParseSlabBytes(b []byte, pageSize int) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	var total int64
	caches := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "slabinfo") || strings.HasPrefix(line, "#") {
			continue
		}
		// name active num objsize objperslab pagesperslab : tunables l b s : slabdata active num shared
		f := strings.Fields(line)
		if len(f) < 16 || f[6] != ":" || f[11] != ":" {
			return 0, fmt.Errorf("procfs: slabinfo line %q", line)
		}
		pps, err1 := strconv.ParseInt(f[5], 10, 64)
		slabs, err2 := strconv.ParseInt(f[14], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("procfs: slabinfo %s: %w", f[0], err)
		}
		total += slabs * pps * int64(pageSize)
		caches++
	}
	if caches == 0 {
		return 0, errors.New("procfs: slabinfo lists no cache")
	}
	return total, sc.Err()
}

// ListenStats are the host-wide listen-queue counters of /proc/net/netstat.
type ListenStats struct {
	Overflows int64 // accept queue full when a handshake completed
	Drops     int64 // SYNs dropped for any reason (overflows included)
}

// ReadListenStats reads the TcpExt counters of /proc/net/netstat.
func (r Root) ReadListenStats() (ListenStats, error) {
	b, err := os.ReadFile(r.path("net", "netstat"))
	if err != nil {
		return ListenStats{}, err
	}
	return ParseListenStats(b)
}

// ParseListenStats finds ListenOverflows and ListenDrops in the TcpExt
// header/value line pair of a /proc/net/netstat text.
func ParseListenStats(b []byte) (ListenStats, error) {
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "TcpExt:") || !strings.HasPrefix(lines[i+1], "TcpExt:") {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) != len(values) {
			return ListenStats{}, errors.New("procfs: netstat TcpExt header and values differ in length")
		}
		var s ListenStats
		found := 0
		for j, n := range names {
			var dst *int64
			switch n {
			case "ListenOverflows":
				dst = &s.Overflows
			case "ListenDrops":
				dst = &s.Drops
			default:
				continue
			}
			v, err := strconv.ParseInt(values[j], 10, 64)
			if err != nil {
				return ListenStats{}, fmt.Errorf("procfs: netstat %s: %w", n, err)
			}
			*dst = v
			found++
		}
		if found != 2 {
			return ListenStats{}, errors.New("procfs: netstat lacks ListenOverflows or ListenDrops")
		}
		return s, nil
	}
	return ListenStats{}, errors.New("procfs: netstat has no TcpExt lines")
}
