package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	got := Line("idle wsgate dial", 5, 20, 1234*time.Millisecond)
	want := "idle wsgate dial [=====               ] 5/20  25%  1.2s"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if got := Line("settle", 0, 0, time.Second); got != "settle  1s" {
		t.Fatalf("no total: %q", got)
	}
	if got := Line("x", 30, 20, 0); !strings.Contains(got, "20/20 100%") {
		t.Fatalf("overflow not clamped: %q", got)
	}
}

// TestNotTerminal: a buffer gets one line per phase start and end.
func TestNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf)
	b.Phase("one", 10)
	for i := range 10 {
		b.Set(i)
	}
	b.Phase("two", 0)
	b.Done()
	b.Done() // idempotent
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "wsbench: one done in") || lines[2] != "wsbench: two …" {
		t.Fatalf("output:\n%s", buf.String())
	}
	var nilBar *Bar
	nilBar.Phase("x", 1)
	nilBar.Set(1)
	nilBar.Done()
}
