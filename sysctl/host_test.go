package sysctl

import (
	"runtime"
	"strings"
	"testing"
)

// TestInspectThisHost is a smoke test against the real host. Values differ
// between machines, so it only checks that the host can be read and printed;
// run it with -v to see the report.
func TestInspectThisHost(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs a Linux /proc")
	}
	r, err := Inspect("/")
	if err != nil {
		t.Fatalf("Inspect(/): %v", err)
	}
	if len(r.Items) == 0 || len(r.Constraints) == 0 {
		t.Fatalf("empty report: %+v", r)
	}
	out := render(t, r)
	if !strings.Contains(out, "this host can hold about ") {
		t.Errorf("no summary in report:\n%s", out)
	}
	t.Logf("report for this host (ready=%v):\n%s", r.Ready(), out)
}
