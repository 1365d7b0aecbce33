package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// captureStdout runs fn with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r)
		done <- b.String()
	}()
	fn()
	w.Close()
	os.Stdout = old
	return <-done
}

// TestDoctorThisHost: on a host whose hard open-files limit is below a
// million (this machine and CI: 20,000), doctor names that limit as the
// binding constraint and exits 1.
func TestDoctorThisHost(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var code int
	out := captureStdout(t, func() { code = run([]string{"doctor"}) })
	if lim.Max >= 1_000_512 {
		t.Logf("hard limit %d: this host may be ready; exit %d", lim.Max, code)
		return
	}
	if code != 1 {
		t.Fatalf("doctor exited %d on a host with a %d open-files hard limit, want 1", code, lim.Max)
	}
	if !strings.Contains(out, "limited by open-files hard limit") {
		t.Fatalf("doctor did not name the open-files hard limit:\n%s", out)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	if out := captureStdout(t, func() { run([]string{"version"}) }); !strings.HasPrefix(out, "wsgate ") {
		t.Fatalf("version printed %q", out)
	}
	if code := run([]string{"nope"}); code != 2 {
		t.Fatalf("unknown command exited %d", code)
	}
}

// TestFlagsFromEnvironment: every serve flag reads WSGATE_<FLAG>; a flag
// on the command line wins.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("WSGATE_MAX_QUEUE_BYTES", "12345")
	t.Setenv("WSGATE_PING_INTERVAL", "7s")
	t.Setenv("WSGATE_LISTEN", "127.0.0.1:1")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f := newServeFlags(fs)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if f.cfg.MaxQueueBytes != 12345 || f.cfg.PingInterval != 7*time.Second || f.cfg.Listen != "127.0.0.1:2" {
		t.Fatalf("got queue %d, ping %v, listen %s", f.cfg.MaxQueueBytes, f.cfg.PingInterval, f.cfg.Listen)
	}
	t.Setenv("WSGATE_MAX_QUEUE_BYTES", "lots")
	if err := applyEnv(flag.NewFlagSet("x", flag.ContinueOnError)); err != nil {
		t.Fatal("an empty flag set reads nothing")
	}
	fs2 := flag.NewFlagSet("serve", flag.ContinueOnError)
	newServeFlags(fs2)
	if err := applyEnv(fs2); err == nil || !strings.Contains(err.Error(), "WSGATE_MAX_QUEUE_BYTES") {
		t.Fatalf("bad value accepted: %v", err)
	}
}
