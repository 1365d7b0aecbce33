package main

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/internal/testutil"
)

// get answers one GET with its status and body; a request the server does
// not answer within a second is an error (a bound port nobody serves).
func get(url string) (int, string, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitStatus polls url until it answers code, for at most within.
func waitStatus(t *testing.T, url string, code int, within time.Duration, logs *testutil.SyncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, body, err := get(url)
		if err == nil && got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %q %v, want %d within %v\n%s", url, got, body, err, code, within, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServeCmd starts the real binary with serve and args; it is killed
// when the test ends.
func startServeCmd(t *testing.T, logs *testutil.SyncBuffer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(buildWsgate(t), append([]string{"serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// termAndWait sends SIGTERM and wants exit 0 within 10 s.
func termAndWait(t *testing.T, cmd *exec.Cmd, logs *testutil.SyncBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v, want exit 0\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still runs 10 s after SIGTERM\n%s", logs)
	}
}

// TestServeHealthWhileRedisUnreachable: with Redis unreachable at start,
// /healthz answers 200 and /readyz 503 ("broker connecting") at once, the
// client port stays closed, and SIGTERM ends serve with exit 0; once Redis
// comes up, the gateway opens its client port and /readyz turns 200. (It
// used to block connecting before it served any HTTP, so a liveness probe
// restarted it for as long as Redis was down.)
func TestServeHealthWhileRedisUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary and redis-server")
	}
	rs := redistest.StartStandalone(t)
	rs.Kill() // its port stays reserved for Restart, with nothing on it

	// SIGTERM while connecting. (No subtests: rs.Restart fails this test,
	// so it must run on this goroutine.)
	{
		var logs testutil.SyncBuffer
		debug, listen := testutil.FreeAddr(t), testutil.FreeAddr(t)
		cmd := startServeCmd(t, &logs, "--listen", listen, "--debug-listen", debug, "--broker", "redis", "--redis-url", rs.URL())
		waitStatus(t, "http://"+debug+"/healthz", http.StatusOK, 3*time.Second, &logs)
		if code, body, err := get("http://" + debug + "/readyz"); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "broker connecting") {
			t.Fatalf("/readyz while Redis is unreachable: %d %q %v, want 503 broker connecting\n%s", code, body, err, &logs)
		}
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			t.Fatalf("client port %s accepts before the broker has connected", listen)
		}
		termAndWait(t, cmd, &logs)
		if !strings.Contains(logs.String(), "stopped before Redis was reached") {
			t.Errorf("no exit logged while connecting:\n%s", &logs)
		}
	}

	// Redis comes up.
	{
		var logs testutil.SyncBuffer
		debug, listen := testutil.FreeAddr(t), testutil.FreeAddr(t)
		cmd := startServeCmd(t, &logs, "--listen", listen, "--debug-listen", debug, "--broker", "redis", "--redis-url", rs.URL())
		waitStatus(t, "http://"+debug+"/readyz", http.StatusServiceUnavailable, 3*time.Second, &logs)
		rs.Restart()
		waitStatus(t, "http://"+debug+"/readyz", http.StatusOK, 20*time.Second, &logs)
		waitStatus(t, "http://"+debug+"/healthz", http.StatusOK, time.Second, &logs)
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			t.Fatalf("client port once ready: %v\n%s", err, &logs)
		}
		c.Close()
		termAndWait(t, cmd, &logs)
	}
}
