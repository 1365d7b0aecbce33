package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// TestRedisFunctionsLoad runs the README's fallback for a backend that
// finds no functions: `wsgate redis-functions | redis-cli -x FUNCTION LOAD
// REPLACE`, then the documented FCALL works.
func TestRedisFunctionsLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.StartStandalone(t)
	code, lib, errOut := runCLI("redis-functions")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	cli := exec.Command("redis-cli", "-p", strconv.Itoa(srv.Port()), "-x", "FUNCTION", "LOAD", "REPLACE")
	cli.Stdin = strings.NewReader(lib)
	if out, err := cli.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "wsgate" {
		t.Fatalf("FUNCTION LOAD: %q %v", out, err)
	}
	out, err := srv.Do("FCALL", "wsgate_publish", "2", "wsgate:{1}:m:c", "wsgate:{1}:h:c",
		"wsgate:{1}:c:c", "c", "hi", "ops", "", "86400000", "PUBLISH", "100", "300000")
	if err != nil || !strings.HasPrefix(out, "1") {
		t.Fatalf("FCALL after loading: %q %v", out, err)
	}
}
