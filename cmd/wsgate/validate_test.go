package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestServeRefusesImpossibleLimits: limits that cannot work together stop
// `wsgate serve` before it listens, with exit status 2 and a message that
// names the flags.
func TestServeRefusesImpossibleLimits(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r)
		done <- b.String()
	}()
	code := run([]string{"serve", "--listen", "127.0.0.1:0", "--max-message-bytes", "1048576", "--max-partial-bytes", "65536"})
	w.Close()
	os.Stderr = old
	out := <-done
	if code != 2 || !strings.Contains(out, "--max-partial-bytes 65536 is less than --max-message-bytes 1048576") {
		t.Fatalf("exit %d, stderr %q; want 2 and the two flags named", code, out)
	}
}
