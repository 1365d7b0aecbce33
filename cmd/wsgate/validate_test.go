package main

import (
	"bytes"
	"net"
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

// TestServeRefusesBadDurations: durations that cannot work, from the
// command line or the config file, stop `wsgate serve` with exit status 2
// and a message naming the flag. The listen address is taken, so a serve
// that accepted them exits 1 instead of running.
func TestServeRefusesBadDurations(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"presence TTL of 2ns", []string{"--presence-ttl", "2ns"}, "--presence-ttl 2ns: want at least 1s"},
		{"presence TTL under a millisecond", []string{"--presence-ttl", "500us"}, "--presence-ttl 500µs: want at least 1s"},
		{"presence TTL 0", []string{"--presence-ttl", "0"}, "--presence-ttl 0s: want at least 1s"},
		{"presence TTL from the config file", []string{"--config", writeFile(t, "c.yaml", "presence_ttl: 0.5\n")},
			"--presence-ttl 500ms: want at least 1s"},
		{"no refresh grace", []string{"--refresh-grace", "0"}, "--refresh-grace 0s: want at least 1s"},
		{"negative refresh grace", []string{"--refresh-grace", "-5s"}, "--refresh-grace -5s: want at least 1s"},
		{"negative JWT leeway", []string{"--jwt-leeway", "-1s"}, "--jwt-leeway -1s: want 0 to 5m0s"},
		{"JWT leeway of an hour", []string{"--jwt-leeway", "1h"}, "--jwt-leeway 1h0m0s: want 0 to 5m0s"},
		{"JWT leeway from the config file", []string{"--config", writeFile(t, "c.json", `{"jwt_leeway": 600}`)},
			"--jwt-leeway 10m0s: want 0 to 5m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"serve", "--listen", busy.Addr().String()}, tc.args...), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}
