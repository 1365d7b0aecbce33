package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Redis is a redis-server a run started for itself: a free loopback port,
// no persistence, a temporary directory.
type Redis struct {
	// URL is redis://ADDR/0, what the servers are given.
	URL  string
	Addr string

	cmd  *exec.Cmd
	dir  string
	done chan error
}

// StartRedis starts redis-server on a free loopback port and waits until
// it answers PING. extra are more redis-server arguments.
func StartRedis(ctx context.Context, extra ...string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not on $PATH: install it (make deps) or pass --redis-url")
	}
	var lastErr error
	for range 5 { // the free port may be taken before redis-server binds it
		addr, err := FreePort()
		if err != nil {
			return nil, err
		}
		host, port, _ := net.SplitHostPort(addr)
		dir, err := os.MkdirTemp("", "wsbench-redis-")
		if err != nil {
			return nil, err
		}
		args := append([]string{"--port", port, "--bind", host, "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", ""}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		r := &Redis{URL: "redis://" + addr + "/0", Addr: addr, cmd: cmd, dir: dir, done: make(chan error, 1)}
		go func() { r.done <- cmd.Wait() }()
		if lastErr = r.waitReady(ctx); lastErr == nil {
			return r, nil
		}
		_ = r.Stop()
	}
	return nil, fmt.Errorf("redis-server did not start: %w", lastErr)
}

// Pid returns the redis-server's process id.
func (r *Redis) Pid() int { return r.cmd.Process.Pid }

func (r *Redis) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			var n int
			if err == nil {
				n, err = c.Read(buf)
			}
			_ = c.Close()
			if err == nil && strings.HasPrefix(string(buf[:n]), "+PONG") {
				return nil
			}
		}
		select {
		case werr := <-r.done:
			r.done <- werr
			return fmt.Errorf("redis-server exited: %v", werr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready: %v", r.Addr, err)
		}
	}
}

// Stop ends redis-server (SIGTERM, SIGKILL after 5 s) and removes its
// directory.
func (r *Redis) Stop() error {
	defer os.RemoveAll(r.dir)
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return nil
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		return errors.New("redis-server did not exit within 5 s of SIGTERM; killed")
	}
}
