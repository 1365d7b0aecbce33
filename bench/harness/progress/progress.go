// Package progress draws wsbench's progress line on stderr. On a terminal
// it redraws one line in place (at most ten times a second); elsewhere (a
// log file, CI, a test) it prints one line per phase, so logs stay short.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Bar is the progress of the current phase. Its methods are safe for
// concurrent use; a nil *Bar does nothing.
type Bar struct {
	w   io.Writer
	tty bool

	mu     sync.Mutex
	label  string
	done   int
	total  int
	start  time.Time
	drawn  time.Time
	active bool
}

// New returns a Bar writing to w; it redraws in place when w is a terminal.
func New(w io.Writer) *Bar {
	return &Bar{w: w, tty: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Phase ends the current phase and starts one called label, expecting
// total steps (0: a phase without a count).
func (b *Bar) Phase(label string, total int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.endLocked()
	b.label, b.done, b.total, b.start, b.active = label, 0, total, time.Now(), true
	if !b.tty {
		fmt.Fprintf(b.w, "wsbench: %s …\n", label)
		return
	}
	b.drawLocked(true)
}

// Set records that done of total steps are complete.
func (b *Bar) Set(done int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	b.drawLocked(false)
}

// Done ends the current phase.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.endLocked()
}

func (b *Bar) endLocked() {
	if !b.active {
		return
	}
	b.active = false
	if b.tty {
		b.drawLocked(true)
		fmt.Fprintln(b.w)
		return
	}
	fmt.Fprintf(b.w, "wsbench: %s done in %s\n", b.label, time.Since(b.start).Round(10*time.Millisecond))
}

func (b *Bar) drawLocked(force bool) {
	if !b.tty || !b.active {
		return
	}
	now := time.Now()
	if !force && now.Sub(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = now
	fmt.Fprintf(b.w, "\r\x1b[K%s", Line(b.label, b.done, b.total, now.Sub(b.start)))
}

// Line renders one progress line: label, a 20-cell bar and counts when
// total > 0, and the elapsed time.
func Line(label string, done, total int, elapsed time.Duration) string {
	el := elapsed.Round(100 * time.Millisecond)
	if total <= 0 {
		return fmt.Sprintf("%s  %s", label, el)
	}
	done = min(max(done, 0), total)
	const width = 20
	fill := done * width / total
	return fmt.Sprintf("%s [%s%s] %d/%d %3d%%  %s", label, strings.Repeat("=", fill),
		strings.Repeat(" ", width-fill), done, total, done*100/total, el)
}
