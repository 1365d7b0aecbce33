package sysctl

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrMalformed marks a /proc file whose content is not in the expected
// format. Inspect does not return it: the affected item is reported as
// unknown and carries the wrapped error.
var ErrMalformed = errors.New("malformed value")

// ErrNoProc is returned by Inspect when root has no proc directory, i.e. it
// is not a host tree at all (as opposed to a host with odd values).
var ErrNoProc = errors.New("no proc directory")

// procTree reads files below root. Paths are given relative to root, in the
// form they have on a real host ("proc/sys/fs/nr_open"), so the same code
// reads "/" and a fake tree built by a test.
type procTree struct {
	root string
}

// path returns the file name of rel inside the tree, for reading and for
// error messages (which then show exactly which file was wrong).
func (t procTree) path(rel string) string {
	return filepath.Join(t.root, filepath.FromSlash(rel))
}

// check verifies that the tree has a proc directory, so that a wrong root is
// one clear error instead of a dozen unknown items.
func (t procTree) check() error {
	p := t.path("proc")
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("inspect %s: %w: %w", t.root, ErrNoProc, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("inspect %s: %w: %s is not a directory", t.root, ErrNoProc, p)
	}
	return nil
}

// read returns the content of rel.
func (t procTree) read(rel string) (string, error) {
	p := t.path(rel)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return string(b), nil
}

// sysctlPath maps a sysctl name to its file: net.core.somaxconn is
// proc/sys/net/core/somaxconn.
func sysctlPath(name string) string {
	return "proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

// readSysctl reads the sysctl name, which must hold exactly n integers (most
// hold one; tcp_mem and friends hold three, ip_local_port_range two).
func (t procTree) readSysctl(name string, n int) ([]int64, error) {
	rel := sysctlPath(name)
	s, err := t.read(rel)
	if err != nil {
		return nil, err
	}
	v, err := parseInts(s, n)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", t.path(rel), err)
	}
	return v, nil
}

// parseInts parses exactly n whitespace-separated non-negative integers.
// None of the settings wsgate checks can be negative, so a negative number
// means the file is not what we think it is.
func parseInts(s string, n int) ([]int64, error) {
	fields := strings.Fields(s)
	if len(fields) != n {
		return nil, fmt.Errorf("%w: want %d integer(s), got %q", ErrMalformed, n, strings.TrimSpace(s))
	}
	v := make([]int64, n)
	for i, f := range fields {
		x, err := strconv.ParseInt(f, 10, 64)
		if err != nil || x < 0 {
			return nil, fmt.Errorf("%w: %q is not a non-negative integer", ErrMalformed, f)
		}
		v[i] = x
	}
	return v, nil
}

// noFileLine starts the RLIMIT_NOFILE line of /proc/<pid>/limits.
const noFileLine = "Max open files"

// parseNoFile extracts the soft and hard RLIMIT_NOFILE from the content of a
// /proc/<pid>/limits file:
//
//	Max open files            20000                20000                files
func parseNoFile(limits string) (soft, hard int64, err error) {
	for _, line := range strings.Split(limits, "\n") {
		rest, ok := strings.CutPrefix(line, noFileLine)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return 0, 0, fmt.Errorf("%w: %q: want soft and hard limit", ErrMalformed, line)
		}
		if soft, err = parseLimit(f[0]); err != nil {
			return 0, 0, err
		}
		if hard, err = parseLimit(f[1]); err != nil {
			return 0, 0, err
		}
		return soft, hard, nil
	}
	return 0, 0, fmt.Errorf("%w: no %q line", ErrMalformed, noFileLine)
}

// parseLimit parses one rlimit column; "unlimited" (RLIM_INFINITY) becomes
// math.MaxInt64 so it never binds.
func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return math.MaxInt64, nil
	}
	v, err := parseInts(s, 1)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// memInfo is the part of /proc/meminfo the capacity estimate needs, in bytes.
type memInfo struct {
	total     int64
	available int64 // -1 when the kernel does not report MemAvailable (< 3.14)
}

// parseMemInfo reads MemTotal (required) and MemAvailable (optional) from
// the content of /proc/meminfo, whose lines look like "MemTotal: 24731708 kB".
func parseMemInfo(s string) (memInfo, error) {
	m := memInfo{total: -1, available: -1}
	for _, line := range strings.Split(s, "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || (key != "MemTotal" && key != "MemAvailable") {
			continue
		}
		v, err := parseKiB(rest)
		if err != nil {
			return memInfo{}, fmt.Errorf("%s: %w", key, err)
		}
		if key == "MemTotal" {
			m.total = v
		} else {
			m.available = v
		}
	}
	if m.total < 0 {
		return memInfo{}, fmt.Errorf("%w: no MemTotal line", ErrMalformed)
	}
	return m, nil
}

// parseKiB parses a meminfo value such as " 24731708 kB" into bytes. The
// kernel always prints kB (meaning KiB) for these fields.
func parseKiB(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("%w: %q: want \"<n> kB\"", ErrMalformed, strings.TrimSpace(s))
	}
	v, err := parseInts(f[0], 1)
	if err != nil {
		return 0, err
	}
	if v[0] > math.MaxInt64/1024 {
		return 0, fmt.Errorf("%w: %s kB overflows", ErrMalformed, f[0])
	}
	return v[0] * 1024, nil
}
