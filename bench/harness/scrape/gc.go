package scrape

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// pauseRing is the length of runtime.MemStats.PauseNs: the stop-the-world
// pause of each of the last 256 collections, a ring indexed by NumGC.
const pauseRing = 256

// GCStats is the collector's record in a server: how many collections ran
// and the pauses of the most recent ones.
type GCStats struct {
	NumGC   uint32
	PauseNs [pauseRing]uint64
}

// GCStats reads the runtime.MemStats comment block of a debug=1 heap
// profile without forcing a collection (no gc=1), so reading it does not
// add a pause to what it measures.
func (c *Client) GCStats(ctx context.Context) (GCStats, error) {
	b, err := c.get(ctx, "/debug/pprof/heap?debug=1")
	if err != nil {
		return GCStats{}, err
	}
	return ParseGCStats(b)
}

// ParseGCStats finds "# NumGC = N" and "# PauseNs = [a b …]" in a debug=1
// heap profile.
func ParseGCStats(b []byte) (GCStats, error) {
	var s GCStats
	var haveNum, havePauses bool
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "# NumGC = "); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return s, fmt.Errorf("scrape: NumGC: %w", err)
			}
			s.NumGC, haveNum = uint32(n), true
		}
		if v, ok := strings.CutPrefix(line, "# PauseNs = "); ok {
			f := strings.Fields(strings.Trim(v, "[]"))
			if len(f) != pauseRing {
				return s, fmt.Errorf("scrape: PauseNs has %d values, want %d", len(f), pauseRing)
			}
			for i, x := range f {
				n, err := strconv.ParseUint(x, 10, 64)
				if err != nil {
					return s, fmt.Errorf("scrape: PauseNs[%d]: %w", i, err)
				}
				s.PauseNs[i] = n
			}
			havePauses = true
		}
	}
	if !haveNum || !havePauses {
		return s, errors.New("scrape: heap profile lacks NumGC or PauseNs")
	}
	return s, nil
}

// PausesSince returns the pauses of the collections that ran after
// before and up to s, oldest first. When more than 256 ran, only the last
// 256 are known: lost says how many are missing.
func (s GCStats) PausesSince(before GCStats) (pauses []time.Duration, lost int) {
	n := int(s.NumGC - before.NumGC) // uint32 arithmetic survives a wrap
	if n > pauseRing {
		lost, n = n-pauseRing, pauseRing
	}
	for k := n; k >= 1; k-- {
		// Collection number g (1-based) stored its pause at (g+255)%256.
		g := s.NumGC - uint32(k-1)
		pauses = append(pauses, time.Duration(s.PauseNs[(g+pauseRing-1)%pauseRing]))
	}
	return pauses, lost
}
