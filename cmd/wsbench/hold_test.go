package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/bench/loadclient"
)

func echoServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestHoldPrintsTwoLines runs "wsbench hold" in-process: the dial stats
// line must come before stdin closes, the closes line after.
func TestHoldPrintsTwoLines(t *testing.T) {
	addr := echoServer(t)
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	e := env{stdin: stdinR, stdout: outW, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	code := make(chan int, 1)
	go func() {
		code <- run(e, []string{"hold", "--addr", addr, "--path", "/echo", "--conns", "50"})
		outW.Close()
	}()

	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		t.Fatalf("no stats line; stderr: %s", stderr.String())
	}
	var sum loadclient.Summary
	if err := json.Unmarshal(lines.Bytes(), &sum); err != nil {
		t.Fatalf("stats line %q: %v", lines.Text(), err)
	}
	if sum.Connected != 50 || sum.Failed != 0 || sum.HandshakeP99Ms <= 0 {
		t.Fatalf("stats: %s", lines.Text())
	}
	for _, field := range []string{`"connected"`, `"first_error"`, `"connect_rate"`, `"handshake_p50_ms"`, `"handshake_max_ms"`} {
		if !strings.Contains(lines.Text(), field) {
			t.Errorf("stats line lacks %s: %s", field, lines.Text())
		}
	}

	stdinW.Close() // EOF ends the hold
	if !lines.Scan() {
		t.Fatal("no closes line")
	}
	var res struct {
		Closes map[string]int `json:"closes"`
		Reason string         `json:"reason"`
	}
	if err := json.Unmarshal(lines.Bytes(), &res); err != nil || res.Closes == nil || res.Reason != "stdin closed" {
		t.Fatalf("closes line %q: %v", lines.Text(), err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d; stderr: %s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hold did not exit after stdin EOF")
	}
}

// TestHoldDurationEnds also covers stdin at /dev/null (nil): not watched.
func TestHoldDurationEnds(t *testing.T) {
	addr := echoServer(t)
	var out, stderr bytes.Buffer
	e := env{stdin: nil, stdout: &out, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	if c := run(e, []string{"hold", "--addr", addr, "--conns", "5", "--duration", "100ms"}); c != 0 {
		t.Fatalf("exit %d; stderr: %s", c, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"reason":"duration elapsed"`) {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	var out, stderr bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	if c := run(e, nil); c != 2 {
		t.Errorf("no command: exit %d", c)
	}
	if c := run(e, []string{"nope"}); c != 2 {
		t.Errorf("unknown command: exit %d", c)
	}
	if c := run(e, []string{"hold", "--conns", "x"}); c != 2 {
		t.Errorf("bad flag: exit %d", c)
	}
}
