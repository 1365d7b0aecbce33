package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testutil"
)

// The process tests run the real wsgate binary, built without the race
// detector, in its own process: they measure fds, goroutines and heap of
// the server as deployed, with the clients in this (test) process.

// builds holds the binaries the package's tests run (removed by TestMain).
var builds testutil.Builds

// buildBinary builds cmd/<name> of this module once per test run.
func buildBinary(t *testing.T, name string) string {
	t.Helper()
	path, err := builds.Build(name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// gatewayProc is a wsgate process started by a test.
type gatewayProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string // WebSocket listener
	debug  string // pprof + metrics listener
	logs   *testutil.SyncBuffer
	exited chan struct{}
	err    error // exit status, valid after exited is closed
}

// startGateway runs `wsgate serve --echo` with extra flags and waits until
// its debug listener answers. The process is killed at cleanup if still up.
func startGateway(t *testing.T, flags ...string) *gatewayProc {
	t.Helper()
	p := &gatewayProc{t: t, addr: testutil.FreeAddr(t), debug: testutil.FreeAddr(t), logs: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	args := append([]string{"serve", "--echo", "--listen", p.addr, "--debug-listen", p.debug}, flags...)
	p.cmd = exec.Command(buildBinary(t, "wsgate"), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start wsgate: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("wsgate output:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := p.get("/metrics"); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgate did not come up:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *gatewayProc) get(path string) (string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.debug + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metric reads one counter or gauge from /metrics.
func (p *gatewayProc) metric(name string) int64 {
	p.t.Helper()
	body, err := p.get("/metrics")
	if err != nil {
		p.t.Fatalf("metrics: %v", err)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64) // the exposition format writes 1e+06
			if err != nil {
				p.t.Fatalf("metric %s: %v", name, err)
			}
			return int64(n)
		}
	}
	p.t.Fatalf("metric %s not found", name)
	return 0
}

// heapInuse is HeapInuse right after a forced GC (pprof's gc=1).
func (p *gatewayProc) heapInuse() int64 {
	p.t.Helper()
	body, err := p.get("/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		p.t.Fatalf("heap profile: %v", err)
	}
	return profileField(p.t, body, "# HeapInuse = ")
}

func (p *gatewayProc) goroutines() int64 {
	p.t.Helper()
	body, err := p.get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		p.t.Fatalf("goroutine profile: %v", err)
	}
	return profileField(p.t, body, "goroutine profile: total ")
}

func profileField(t *testing.T, body, prefix string) int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("%q not found in profile", prefix)
	return 0
}

// fds counts the process's open file descriptors.
func (p *gatewayProc) fds() int {
	p.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatalf("read fds: %v", err)
	}
	return len(ents)
}

func (p *gatewayProc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
}

// dialIdle opens an upgraded connection with as little client state as
// possible (thousands of them are held by one test).
func dialIdle(addr, path string) (net.Conn, error) { return dialIdleWith(addr, path) }

// newBufReader is the raw client's reader.
func newBufReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64<<10) }

// dialIdleWith is dialIdle with extra request header lines.
func dialIdleWith(addr, path string, extra ...string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	head, err := requestUpgrade(c, addr, path, extra...)
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
		c.Close()
		return nil, fmt.Errorf("upgrade refused: %q", head)
	}
	return c, nil
}

// requestUpgrade sends an upgrade request for path on c, with extra header
// lines, and returns the response head.
func requestUpgrade(c net.Conn, addr, path string, extra ...string) (string, error) {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	req += "\r\n"
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	var buf [512]byte
	n := 0
	for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
		k, err := c.Read(buf[n:])
		if err != nil {
			return "", fmt.Errorf("read upgrade response (%q so far): %w", buf[:n], err)
		}
		n += k
	}
	return string(buf[:n]), nil
}

// dialMany grows conns to n idle connections.
func dialMany(t *testing.T, addr string, conns []net.Conn, n int) []net.Conn {
	t.Helper()
	for len(conns) < n {
		c, err := dialIdle(addr, "/echo")
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}
