package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/bench/naive"
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/internal/testutil"
)

// TestNaiveRunsUntilSIGTERM runs "wsbench naive" in-process: it prints its
// addresses, echoes, serves metrics, and on SIGTERM closes clients with
// 1001 and exits 0.
func TestNaiveRunsUntilSIGTERM(t *testing.T) {
	outR, outW := io.Pipe()
	var stderr testutil.SyncBuffer
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
	if c := run(e, []string{"naive", "--broker", "kafka"}); c != 2 {
		t.Errorf("unknown broker: exit %d", c)
	}
	if c := run(e, []string{"naive", "--compression", "--compression-mode", "per-message"}); c != 2 {
		t.Errorf("unknown compression mode: exit %d", c)
	}
	if c := run(e, []string{"naive", "--compression-mode", "per-connection"}); c != 2 {
		t.Errorf("compression mode without --compression: exit %d", c)
	}
	if c := run(e, []string{"naive", "--listen", "256.0.0.1:1"}); c != 1 {
		t.Errorf("bad listen address: exit %d", c)
	}
	if c := run(e, []string{"naive", "--listen", "127.0.0.1:0", "--ping-interval", "1m", "--pong-wait", "30s"}); c != 1 {
		t.Errorf("pong wait shorter than ping interval: exit %d", c)
	}
}

// TestNaiveCompressionModeFlag: --compression-mode reaches the Config;
// prepared is the default, with or without --compression.
func TestNaiveCompressionModeFlag(t *testing.T) {
	e := env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		args []string
		want naive.CompressionMode
	}{
		{nil, naive.CompressionPrepared},
		{[]string{"--compression"}, naive.CompressionPrepared},
		{[]string{"--compression", "--compression-mode", "prepared"}, naive.CompressionPrepared},
		{[]string{"--compression", "--compression-mode=per-connection"}, naive.CompressionPerConnection},
	} {
		opts, ok, code := naiveFlags(e, tc.args)
		if !ok || code != 0 || opts.cfg.CompressionMode != tc.want {
			t.Errorf("%q: ok %v code %d mode %q, want %q", tc.args, ok, code, opts.cfg.CompressionMode, tc.want)
		}
	}
}

// TestNaiveRedisBroker: with --broker redis a publication travels through
// Redis to a subscriber of the naive server.
func TestNaiveRedisBroker(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH (make deps)")
	}
	rs := redistest.StartStandalone(t)
	outR, outW := io.Pipe()
	var stderr testutil.SyncBuffer
	e := env{stdout: outW, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	code := make(chan int, 1)
	go func() {
		opts, _, _ := naiveFlags(e, []string{"--listen", "127.0.0.1:0", "--broker", "redis", "--redis-url", rs.URL()})
		code <- serveNaive(ctx, e, opts)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	var ready naiveReady
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &ready) != nil {
		t.Fatalf("no ready line; stderr: %s", stderr.String())
	}

	sub := dialNaive(t, ready.Listen)
	pub := dialNaive(t, ready.Listen)
	writeCmd(t, sub, codec.Command{ID: 1, Cmd: codec.CmdSubscribe, Channel: []byte("r")})
	if _, _, err := sub.ReadMessage(); err != nil { // the subscribe reply
		t.Fatal(err)
	}
	// Redis subscribes asynchronously: publish until one gets through.
	got := make(chan []byte, 1)
	go func() {
		_, msg, _ := sub.ReadMessage()
		got <- msg
	}()
	deadline := time.After(10 * time.Second)
	for id := uint32(1); ; id++ {
		writeCmd(t, pub, codec.Command{ID: id, Cmd: codec.CmdPublish, Channel: []byte("r"), Data: []byte("via-redis")})
		select {
		case msg := <-got:
			if !bytes.Contains(msg, []byte("via-redis")) {
				t.Fatalf("subscriber got %q", msg)
			}
			cancel()
			if c := <-code; c != 0 {
				t.Fatalf("exit %d; stderr: %s", c, stderr.String())
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no publication through Redis; stderr: %s", stderr.String())
		}
	}
}

func dialNaive(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func writeCmd(t *testing.T, c *websocket.Conn, cmd codec.Command) {
	t.Helper()
	b, err := codec.AppendCommand(nil, codec.Msgpack, &cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatal(err)
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
