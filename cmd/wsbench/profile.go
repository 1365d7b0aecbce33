package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/harness/scrape"
)

// profiler records a server's CPU profile (/debug/pprof/profile on its
// debug listener) over one publishing phase, for --profile DIR. The Go
// profiler cannot be stopped early, so it runs for a fixed time chosen to
// cover the phase; the rest is the server idling.
type profiler struct {
	path string
	done chan error
}

// startProfile starts recording d of sc's server into dir/name.pprof; nil
// when not profiling.
func startProfile(ctx context.Context, dir, name string, sc *scrape.Client, d time.Duration) *profiler {
	if dir == "" || sc == nil {
		return nil
	}
	p := &profiler{path: filepath.Join(dir, name+".pprof"), done: make(chan error, 1)}
	go func() {
		b, err := sc.CPUProfile(ctx, d)
		if err == nil {
			err = os.WriteFile(p.path, b, 0o644)
		}
		p.done <- err
	}()
	return p
}

// wait waits for the profile and records a problem when there is none.
func (p *profiler) wait(b *bench) {
	if p == nil {
		return
	}
	if err := <-p.done; err != nil {
		b.run.Problem("profile %s: %v", p.path, err)
	}
}

// profileName is a file name for one design, layout and mode.
func profileName(design, variant, mode string) string {
	return strings.NewReplacer(" ", "-").Replace(design + "-" + variant + "-" + mode)
}

// profileSeconds covers a publishing phase: the rate phase's duration, or
// a generous second per burst (a burst of 200,000 deliveries takes a
// fraction of one on wsgate).
func profileSeconds(o fanoutOpts, mode string) time.Duration {
	if mode == modeRate {
		return o.duration + time.Second
	}
	return time.Duration(o.bursts) * (time.Second + o.burstPause)
}

func checkProfileDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	return nil
}
