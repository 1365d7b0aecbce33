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
