package sysctl

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestReady(t *testing.T) {
	ok := Item{Name: "a", OK: true}
	base := Report{Target: 100, Estimate: 100, Binding: "x", Items: []Item{ok, ok}}
	if !base.Ready() {
		t.Error("estimate = target and all items ok: not ready")
	}
	low := base
	low.Estimate = 99
	if low.Ready() {
		t.Error("estimate below target: ready")
	}
	bad := base
	bad.Items = []Item{ok, {Name: "b"}}
	if bad.Ready() || len(bad.Failing()) != 1 {
		t.Errorf("one item not ok: ready=%v failing=%v", bad.Ready(), bad.Failing())
	}
	unknown := base
	unknown.Items = []Item{ok, {Name: "c", OK: true, Err: errors.New("x")}}
	if unknown.Items[1].Status() != "UNKNOWN" {
		t.Error("item with Err is not UNKNOWN")
	}
	none := base
	none.Binding = ""
	if none.Ready() {
		t.Error("no constraint evaluated: ready")
	}
}

var summaryRE = regexp.MustCompile(`^this host can hold about \d+ connections \(limited by .+\)$`)

func TestWrite(t *testing.T) {
	out := render(t, goodHost().with(limitsRel, limitsFile("20000", "20000")).inspect(t))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")

	// The item table: a header and one row per item, columns aligned.
	hdr := indexOf(lines, "ITEM ")
	if hdr < 0 {
		t.Fatalf("no item table header:\n%s", out)
	}
	for _, col := range []string{"CURRENT", "RECOMMENDED", "STATUS", "WHY"} {
		if !strings.Contains(lines[hdr], col) {
			t.Errorf("header %q lacks %s", lines[hdr], col)
		}
	}
	status := strings.Index(lines[hdr], "STATUS")
	for i, name := range itemNames {
		row := lines[hdr+1+i]
		if !strings.HasPrefix(row, name+" ") {
			t.Errorf("row %d = %q, want item %s", i, row, name)
		}
		word := strings.Fields(row[status:])[0]
		if word != "ok" && word != "FIX" && word != "UNKNOWN" {
			t.Errorf("row %q: status column holds %q", row, word)
		}
	}

	sum := indexOf(lines, "this host can hold")
	if sum < 0 || !summaryRE.MatchString(lines[sum]) {
		t.Fatalf("no summary line:\n%s", out)
	}
	want := "this host can hold about 19488 connections (limited by open-files hard limit)"
	if lines[sum] != want {
		t.Errorf("summary %q, want %q", lines[sum], want)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "NOT READY") || !strings.Contains(last, "RLIMIT_NOFILE hard") {
		t.Errorf("verdict %q", last)
	}
	if !strings.Contains(out, "<- binding") {
		t.Errorf("binding constraint not marked:\n%s", out)
	}

	out = render(t, goodHost().inspect(t))
	if !strings.HasSuffix(out, "READY for 1000000 connections\n") {
		t.Errorf("good host verdict:\n%s", out)
	}
}

// indexOf returns the index of the first line starting with prefix, or -1.
func indexOf(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	err := goodHost().inspect(t).Write(failWriter{})
	if err == nil || !strings.Contains(err.Error(), "write report: disk full") {
		t.Errorf("Write to failing writer: %v", err)
	}
}
