package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes the host a run measured, for the report's header.
type Machine struct {
	CPUs      int    `json:"nproc"`
	Model     string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	MemBytes  int64  `json:"mem_bytes"`
	PageSize  int    `json:"page_size"`
	// NofileLimit is this process's open-file hard limit: it caps the
	// connections one process can hold.
	NofileLimit uint64 `json:"nofile_limit"`
	Somaxconn   int    `json:"somaxconn"`
	// LoadAvg is the 1-minute load average when the run started: other
	// work on the host is noise in every number.
	LoadAvg float64 `json:"load_avg_1m"`
}

// ReadMachine gathers Machine; fields it cannot read stay empty.
func (r Root) ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), PageSize: os.Getpagesize()}
	if b, err := os.ReadFile(r.path("cpuinfo")); err == nil {
		m.Model = ParseCPUModel(b)
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile(r.path("meminfo")); err == nil {
		m.MemBytes = ParseMemTotal(b)
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		m.NofileLimit = lim.Max
	}
	if b, err := os.ReadFile(r.path("sys", "net", "core", "somaxconn")); err == nil {
		m.Somaxconn, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	m.LoadAvg, _ = r.ReadLoadAvg()
	return m
}

// ReadLoadAvg returns the 1-minute load average from /proc/loadavg.
func (r Root) ReadLoadAvg() (float64, error) {
	b, err := os.ReadFile(r.path("loadavg"))
	if err != nil {
		return 0, err
	}
	return ParseLoadAvg(b)
}

// ParseLoadAvg returns the first field of a /proc/loadavg text.
func ParseLoadAvg(b []byte) (float64, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("procfs: empty loadavg")
	}
	return strconv.ParseFloat(f[0], 64)
}

// ParseCPUModel returns the first "model name" of a /proc/cpuinfo text.
func ParseCPUModel(b []byte) string {
	for line := range bytes.Lines(b) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && string(bytes.TrimSpace(name)) == "model name" {
			return string(bytes.TrimSpace(value))
		}
	}
	return ""
}

// ParseMemTotal returns MemTotal in bytes from a /proc/meminfo text (0 when
// absent).
func ParseMemTotal(b []byte) int64 {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("MemTotal:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 2 && f[1] == "kB" {
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// HostCPU is the CPU time of the whole host, summed over its CPUs, from
// the "cpu" line of /proc/stat: every process and the kernel's own work.
// Work no process asked for in a system call (TCP timers, packets handled
// in softirq) shows here and may appear in no process's utime+stime.
type HostCPU struct {
	// Busy is user + nice + system + irq + softirq: everything but idle,
	// iowait and time stolen by the hypervisor.
	Busy time.Duration
	// Softirq is the part of Busy spent in softirqs (with the kernel's
	// IRQ time accounting; without it this is 0 and the time is charged
	// to whichever task was interrupted).
	Softirq time.Duration
}

// ReadHostCPU reads /proc/stat.
func (r Root) ReadHostCPU() (HostCPU, error) {
	b, err := os.ReadFile(r.path("stat"))
	if err != nil {
		return HostCPU{}, err
	}
	return ParseHostCPU(b)
}

// ParseHostCPU parses the first line of /proc/stat:
// "cpu user nice system idle iowait irq softirq steal ..." in USER_HZ ticks.
func ParseHostCPU(b []byte) (HostCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return HostCPU{}, fmt.Errorf("procfs: /proc/stat starts %q, want a cpu line with 7 counters", line)
	}
	var v [7]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return HostCPU{}, fmt.Errorf("procfs: /proc/stat cpu field %d: %w", i+1, err)
		}
		v[i] = n
	}
	user, nice, system, irq, softirq := v[0], v[1], v[2], v[5], v[6]
	return HostCPU{Busy: ticks(user + nice + system + irq + softirq), Softirq: ticks(softirq)}, nil
}
