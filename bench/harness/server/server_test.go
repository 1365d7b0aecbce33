package server

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
)

// TestMain turns the test binary into a fake server when asked: the
// standard helper-process pattern, so Start is tested on a real child.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SERVER_TEST_HELPER"); mode != "" {
		os.Exit(helper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(mode string, args []string) int {
	if mode == "args" { // echo the arguments, then wait for stdin to close
		fmt.Printf("args: %q%s\n", args, os.Getenv("SERVER_TEST_EXTRA"))
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	}
	fs := flag.NewFlagSet("helper", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	debug := fs.String("debug-listen", "", "")
	// A server with flags of its own (see TestListenArgs).
	port := fs.String("port", "", "")
	debugPort := fs.String("internal-port", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *port != "" {
		*listen, *debug = "127.0.0.1:"+*port, "127.0.0.1:"+*debugPort
	}
	switch mode {
	case "crash":
		fmt.Fprintln(os.Stderr, "boom: cannot start")
		return 3
	case "control":
		fmt.Println(`{"event":"listening"}`)
		buf := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				return 0
			}
		}
	}
	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		return 1
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "up 1") })
	go func() { _ = http.ListenAndServe(*debug, mux) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	return 0
}

func spec(t *testing.T, mode string, control bool) Spec {
	t.Setenv("SERVER_TEST_HELPER", mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: mode, Bin: exe, Debug: !control, Control: control}
}

func TestStartStop(t *testing.T) {
	p, err := Start(context.Background(), spec(t, "ok", false))
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() <= 0 || p.Exited() || p.ExitError() != nil || !strings.HasPrefix(p.DebugAddr, "127.0.0.1:") {
		t.Fatalf("process %+v", p)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("not exited after Stop")
	}
}

// TestListenArgs starts a server that is told its addresses by flags of
// its own: it must be ready (answering on both) at the chosen ports.
func TestListenArgs(t *testing.T) {
	sp := spec(t, "ok", false)
	sp.ListenArgs = func(listen, debug string) []string {
		_, port, _ := net.SplitHostPort(listen)
		_, debugPort, _ := net.SplitHostPort(debug)
		return []string{"--port", port, "--internal-port", debugPort}
	}
	p, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if p.DebugAddr == "" || p.DebugAddr == p.Addr {
		t.Fatalf("addresses %q %q", p.Addr, p.DebugAddr)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

// A given debug address is used as is (a balancer health-checks it there).
func TestDebugListen(t *testing.T) {
	sp := spec(t, "ok", false)
	addr, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	sp.DebugListen = addr
	p, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if p.DebugAddr != addr {
		t.Fatalf("debug address %s, want %s", p.DebugAddr, addr)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestStartCrash(t *testing.T) {
	_, err := Start(context.Background(), spec(t, "crash", false))
	if err == nil || !strings.Contains(err.Error(), "boom: cannot start") {
		t.Fatalf("err %v", err)
	}
}

func TestControl(t *testing.T) {
	p, err := Start(context.Background(), spec(t, "control", true))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.FirstLine, "listening") {
		t.Fatalf("first line %q", p.FirstLine)
	}
	if err := p.Stop(); err != nil { // closing stdin ends it
		t.Fatal(err)
	}
}

// A NoListen process gets its arguments as given (no --listen), and
// Env on top of the environment.
func TestNoListen(t *testing.T) {
	sp := spec(t, "args", true)
	sp.Args, sp.NoListen, sp.Env = []string{"million-client", "--conns", "3"}, true, []string{"SERVER_TEST_EXTRA= env"}
	p, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if want := `args: ["million-client" "--conns" "3"] env`; strings.TrimSpace(p.FirstLine) != want || p.Addr != "" {
		t.Errorf("first line %q, addr %q; want %s and no address", p.FirstLine, p.Addr, want)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestTail(t *testing.T) {
	tl := newTail(5)
	fmt.Fprint(tl, "abc")
	fmt.Fprint(tl, "defg")
	if tl.String() != "cdefg" {
		t.Fatalf("%q", tl.String())
	}
}

func TestStartRedis(t *testing.T) {
	r, err := StartRedis(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.URL, "redis://127.0.0.1:") || r.Pid() <= 0 {
		t.Errorf("URL %q pid %d", r.URL, r.Pid())
	}
	dir := r.dir
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", r.Addr); err == nil {
		c.Close()
		t.Errorf("%s still answers after Stop", r.Addr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("redis directory %s left behind (%v)", dir, err)
	}
}
