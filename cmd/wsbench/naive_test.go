package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestNaiveRunsUntilSIGTERM runs "wsbench naive" in-process: it prints its
// addresses, echoes, serves metrics, and on SIGTERM closes clients with
// 1001 and exits 0.
func TestNaiveRunsUntilSIGTERM(t *testing.T) {
	outR, outW := io.Pipe()
	var stderr naiveLogBuffer
	e := env{stdout: outW, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	code := make(chan int, 1)
	go func() {
		code <- run(e, []string{"naive", "--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0"})
		outW.Close()
	}()

	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		t.Fatalf("no ready line; stderr: %s", stderr.String())
	}
	var ready naiveReady
	if err := json.Unmarshal(lines.Bytes(), &ready); err != nil || ready.Listen == "" || ready.DebugListen == "" {
		t.Fatalf("ready line %q: %v", lines.Text(), err)
	}

	c, _, err := websocket.DefaultDialer.Dial("ws://"+ready.Listen+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if typ, got, err := c.ReadMessage(); err != nil || typ != websocket.TextMessage || string(got) != "hi" {
		t.Fatalf("echo: %d %q %v", typ, got, err)
	}
	if m := metricsText(t, ready.DebugListen); !strings.Contains(m, "wsgate_conns_open 1\n") {
		t.Fatalf("metrics:\n%s", m)
	}

	// The ready line comes after signal.NotifyContext: SIGTERM is caught.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("after SIGTERM the client got %v, want close 1001", err)
	}
	select {
	case got := <-code:
		if got != 0 {
			t.Fatalf("exit %d; stderr: %s", got, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("naive did not exit after SIGTERM")
	}
}

func TestNaiveUsageErrors(t *testing.T) {
	var out, stderr bytes.Buffer
	e := env{stdout: &out, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	if c := run(e, []string{"naive", "--send-buffer", "x"}); c != 2 {
		t.Errorf("bad flag: exit %d", c)
	}
	if c := run(e, []string{"naive", "-h"}); c != 0 || !strings.Contains(stderr.String(), "-pong-wait") {
		t.Errorf("help: exit %d, %s", c, stderr.String())
	}
	if c := run(e, []string{"naive", "--listen", "256.0.0.1:1"}); c != 1 {
		t.Errorf("bad listen address: exit %d", c)
	}
	if c := run(e, []string{"naive", "--listen", "127.0.0.1:0", "--ping-interval", "1m", "--pong-wait", "30s"}); c != 1 {
		t.Errorf("pong wait shorter than ping interval: exit %d", c)
	}
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// naiveLogBuffer is a bytes.Buffer safe for the server's goroutines to log
// into while the test reads it.
type naiveLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *naiveLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *naiveLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
