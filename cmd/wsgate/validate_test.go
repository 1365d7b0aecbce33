package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestServeRefusesImpossibleLimits: limits that cannot work together stop
// `wsgate serve` before it listens, with exit status 2 and a message that
// names the flags.
func TestServeRefusesImpossibleLimits(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--listen", "127.0.0.1:0", "--max-message-bytes", "1048576",
		"--max-publication-bytes", "1000000", "--max-partial-bytes", "65536"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "--max-partial-bytes 65536 is less than --max-message-bytes 1048576") {
		t.Fatalf("exit %d, stderr %q; want 2 and the two flags named", code, stderr.String())
	}
}
