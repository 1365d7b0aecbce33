package loadclient

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a gorilla WebSocket server with a few behaviours, one per
// path. It records the source addresses and Origins it saw.
type testServer struct {
	*httptest.Server
	mu      sync.Mutex
	sources map[string]int
	origins map[string]int
	// readErrs receives how each /hold connection's reads ended.
	readErrs chan error
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	s := &testServer{sources: map[string]int{}, origins: map[string]int{}, readErrs: make(chan error, 100)}
	// A small write buffer makes gorilla fragment large messages, which
	// exercises our reassembly.
	up := websocket.Upgrader{
		WriteBufferSize: 512,
		Subprotocols:    []string{"wsgate.v1"},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	mux := http.NewServeMux()
	handle := func(path string, serve func(*websocket.Conn)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			s.record(r)
			serve(c)
		})
	}
	handle("/echo", serveEcho)
	handle("/close", func(c *websocket.Conn) {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4008, "slow consumer"), time.Now().Add(time.Second))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for { // until our close echo arrives (gorilla reports it as an error)
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	handle("/drop", func(c *websocket.Conn) {}) // TCP close without a close frame
	// Read until the client goes, and say how that looked.
	handle("/hold", func(c *websocket.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				s.readErrs <- err
				return
			}
		}
	})
	handle("/ping", func(c *websocket.Conn) {
		got := make(chan string, 1)
		c.SetPongHandler(func(p string) error { got <- p; return nil })
		_ = c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second))
		go func() { // reading is what runs the pong handler
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		select {
		case p := <-got:
			_ = c.WriteMessage(websocket.TextMessage, []byte("pong:"+p))
		case <-time.After(5 * time.Second):
		}
		time.Sleep(100 * time.Millisecond) // let the client read before we close
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func serveEcho(c *websocket.Conn) {
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(op, msg); err != nil {
			return
		}
	}
}

func (s *testServer) record(r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.mu.Lock()
	s.sources[host]++
	s.origins[r.Header.Get("Origin")]++
	s.mu.Unlock()
}

func (s *testServer) addr() string { return s.Listener.Addr().String() }

func dial(t *testing.T, cfg Config) *Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	const n = 200
	srv := newTestServer(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB: fragmented by the server
	var got sync.Map                                      // index → []string
	var received atomic.Int64
	p := dial(t, Config{
		Addr: srv.addr(), Path: "/echo", Conns: n, DialsInFlight: 50,
		Subprotocol: "wsgate.v1", Origin: "https://bench.example",
		OnMessage: func(c *Conn, op byte, payload []byte) {
			desc := fmt.Sprintf("%d:%d", op, len(payload))
			if op == OpText {
				desc = string(payload) // copied: payload is only valid during the call
			} else if !bytes.Equal(payload, big) {
				desc = "corrupt binary"
			}
			v, _ := got.LoadOrStore(c.Index(), &[]string{})
			*v.(*[]string) = append(*v.(*[]string), desc) // one worker per conn at a time
			received.Add(1)
		},
	})
	st := p.Stats()
	if st.Connected != n || st.Failed != 0 || len(p.Conns()) != n {
		t.Fatalf("connected %d failed %d (%s), conns %d", st.Connected, st.Failed, st.FirstError, len(p.Conns()))
	}
	if st.HandshakeP50 <= 0 || st.HandshakeP99 < st.HandshakeP50 || st.HandshakeMax < st.HandshakeP99 || st.ConnectRate <= 0 {
		t.Fatalf("implausible latency stats: %+v", st)
	}
	for _, c := range p.Conns() {
		for _, m := range []struct {
			op byte
			p  []byte
		}{{OpText, []byte(fmt.Sprintf("hello %d", c.Index()))}, {OpBinary, big}, {OpText, []byte("bye")}} {
			if err := c.Send(m.op, m.p); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
	}
	waitFor(t, "3 echoes per connection", func() bool { return received.Load() == 3*n })
	for i := range n {
		v, _ := got.Load(i)
		want := []string{fmt.Sprintf("hello %d", i), fmt.Sprintf("%d:%d", OpBinary, len(big)), "bye"}
		if v == nil || fmt.Sprint(*v.(*[]string)) != fmt.Sprint(want) {
			t.Fatalf("conn %d received %v, want %v", i, v, want)
		}
	}
	if st := p.Stats(); st.MessagesIn != 3*n || st.MessagesOut != 3*n || st.Open != n {
		t.Fatalf("stats after echo: %+v", st)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.sources) != 8 || srv.sources["127.0.0.8"] != n/8 {
		t.Errorf("source addresses seen by the server: %v", srv.sources)
	}
	if srv.origins["https://bench.example"] != n {
		t.Errorf("origins seen by the server: %v", srv.origins)
	}
}

func TestServerCloseCodeReported(t *testing.T) {
	const n = 40
	srv := newTestServer(t)
	var codes sync.Map
	p := dial(t, Config{Addr: srv.addr(), Path: "/close", Conns: n, OnClose: func(c *Conn, code int) {
		codes.Store(c.Index(), code)
	}})
	// Stats count a close just before its OnClose runs: wait for both.
	waitFor(t, "close frames", func() bool {
		seen := 0
		codes.Range(func(any, any) bool { seen++; return true })
		return p.Stats().Closes[4008] == n && seen == n
	})
	st := p.Stats()
	if st.Connected != n || st.Closed != n || st.Open != 0 || len(st.Closes) != 1 {
		t.Fatalf("stats: %+v", st)
	}
	for i := range n {
		if v, _ := codes.Load(i); v != 4008 {
			t.Fatalf("OnClose for conn %d got %v", i, v)
		}
	}
	if err := p.Conns()[0].Send(OpText, []byte("late")); err != ErrNotOpen {
		t.Fatalf("send on closed conn: %v", err)
	}
}

func TestTCPCloseWithoutFrameIs1006(t *testing.T) {
	srv := newTestServer(t)
	p := dial(t, Config{Addr: srv.addr(), Path: "/drop", Conns: 10})
	waitFor(t, "abnormal closes", func() bool { return p.Stats().Closes[CodeAbnormal] == 10 })
}

func TestClientCloseAnswered(t *testing.T) {
	srv := newTestServer(t)
	p := dial(t, Config{Addr: srv.addr(), Path: "/echo", Conns: 10})
	for _, c := range p.Conns() {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// gorilla answers our 1000 with 1000, then closes TCP.
	waitFor(t, "close answers", func() bool { return p.Stats().Closes[1000] == 10 })
}

func TestPingAnsweredWithPong(t *testing.T) {
	srv := newTestServer(t)
	var msgs sync.Map
	p := dial(t, Config{Addr: srv.addr(), Path: "/ping", Conns: 5, OnMessage: func(c *Conn, _ byte, payload []byte) {
		msgs.Store(c.Index(), string(payload))
	}})
	waitFor(t, "pong confirmations", func() bool { return p.Stats().MessagesIn == 5 })
	if n := p.Stats().PingsIn; n != 5 {
		t.Errorf("PingsIn = %d, want 5", n)
	}
	for i := range 5 {
		if v, _ := msgs.Load(i); v != "pong:are you there" {
			t.Fatalf("conn %d: %v", i, v)
		}
	}
}

func TestFailedDialsCounted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	p := dial(t, Config{Addr: addr, Conns: 30, DialsInFlight: 7})
	st := p.Stats()
	if st.Connected != 0 || st.Failed != 30 || !strings.Contains(st.FirstError, "connection refused") {
		t.Fatalf("stats: %+v", st)
	}
	if len(p.Conns()) != 0 {
		t.Fatalf("conns: %d", len(p.Conns()))
	}
}

// silentServer accepts connections and never answers; it can also answer
// every request with a fixed response.
func silentServer(t *testing.T, response string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if response != "" {
				_, _ = c.Write([]byte(response))
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestHandshakeTimeout(t *testing.T) {
	addr := silentServer(t, "")
	start := time.Now()
	p := dial(t, Config{Addr: addr, Conns: 10, HandshakeTimeout: 300 * time.Millisecond})
	st := p.Stats()
	if st.Failed != 10 || !strings.Contains(st.FirstError, "handshake timeout") {
		t.Fatalf("stats: %+v", st)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("dial took %v", d)
	}
}

func TestBadUpgradeResponsesFail(t *testing.T) {
	for name, resp := range map[string]string{
		"bad accept": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n",
		"refused":    "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := dial(t, Config{Addr: silentServer(t, resp), Conns: 3})
			if st := p.Stats(); st.Failed != 3 || st.FirstError == "" {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

func TestSubprotocolNotSelectedFails(t *testing.T) {
	srv := newTestServer(t)
	p := dial(t, Config{Addr: srv.addr(), Path: "/echo", Conns: 3, Subprotocol: "other"})
	if st := p.Stats(); st.Failed != 3 || !strings.Contains(st.FirstError, "subprotocol") {
		t.Fatalf("stats: %+v", st)
	}
}

func TestDialContextCancelAbortsPending(t *testing.T) {
	addr := silentServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	p, err := Dial(ctx, Config{Addr: addr, Conns: 20, DialsInFlight: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Dial took %v after its context ended", d)
	}
	if st := p.Stats(); st.Failed != 20 || !strings.Contains(st.FirstError, "abort") {
		t.Fatalf("stats: %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Addr: "localhost:80"},
		{Addr: "[::1]:80"},
		{Addr: "127.0.0.1:80", Path: "nopath"},
		{Addr: "127.0.0.1:80", Origin: "a\r\nX: y"},
		{Addr: "127.0.0.1:80", SourceIPs: []string{"::1"}},
		{Addr: "127.0.0.1:80", Conns: -1},
	} {
		if _, err := Dial(context.Background(), cfg); err == nil {
			t.Errorf("Dial(%+v) succeeded", cfg)
		}
	}
}

func TestSendValidation(t *testing.T) {
	srv := newTestServer(t)
	p := dial(t, Config{Addr: srv.addr(), Path: "/echo", Conns: 1, MaxQueueBytes: 64})
	c := p.Conns()[0]
	if err := c.Send(0x8, nil); err != ErrBadOpcode {
		t.Errorf("close via Send: %v", err)
	}
	if err := c.Send(OpPing, make([]byte, 126)); err == nil {
		t.Errorf("long ping accepted")
	}
	if err := c.Send(OpBinary, make([]byte, 100)); err != ErrQueueFull {
		t.Errorf("oversized send: %v", err)
	}
	p.Close()
	if err := c.Send(OpText, []byte("x")); err != ErrNotOpen {
		t.Errorf("send after Close: %v", err)
	}
}

// TestFramesRightAfterUpgradeKept: a server may send frames in the same
// packet as its 101; they must not be lost with the response head.
func TestFramesRightAfterUpgradeKept(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		n, _ := c.Read(buf) // the request is small: one read
		var key string
		for _, line := range strings.Split(string(buf[:n]), "\r\n") {
			if k, ok := strings.CutPrefix(line, "Sec-WebSocket-Key: "); ok {
				key = k
			}
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"
		frame := []byte{0x81, 5, 'e', 'a', 'r', 'l', 'y'}
		_, _ = c.Write(append([]byte(resp), frame...))
		_, _ = c.Read(buf) // until the client goes away
	}()
	got := make(chan string, 1)
	p := dial(t, Config{Addr: l.Addr().String(), Conns: 1, OnMessage: func(_ *Conn, _ byte, payload []byte) {
		got <- string(payload)
	}})
	select {
	case m := <-got:
		if m != "early" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("frame after the 101 was lost (stats %+v)", p.Stats())
	}
	p.Close()
	<-done
}

// Start returns before the dials end; OnOpen runs once per upgraded
// connection, and what it sends goes out (the echo comes back).
func TestStartRampsInBackgroundAndOnOpenSends(t *testing.T) {
	srv := newTestServer(t)
	var opened atomic.Int64
	p, err := Start(context.Background(), Config{Addr: srv.addr(), Path: "/echo", Conns: 50, DialsInFlight: 10,
		OnOpen: func(c *Conn) {
			opened.Add(1)
			if err := c.Send(OpText, []byte(fmt.Sprintf("hello %d", c.Index()))); err != nil {
				t.Errorf("send from OnOpen: %v", err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Dialed():
	case <-time.After(20 * time.Second):
		t.Fatal("dials did not end")
	}
	defer p.Close()
	if st := p.Stats(); st.Connected != 50 || opened.Load() != 50 {
		t.Fatalf("connected %d, opened %d, want 50 each", st.Connected, opened.Load())
	}
	waitFor(t, "echoes of the OnOpen sends", func() bool { return p.Stats().MessagesIn == 50 })
}

// Closing the pool with ResetOnClose resets the connections (the server
// reads ECONNRESET); without it, the server sees the TCP close.
func TestResetOnClose(t *testing.T) {
	for _, reset := range []bool{true, false} {
		t.Run(fmt.Sprint("reset=", reset), func(t *testing.T) {
			srv := newTestServer(t)
			p, err := Dial(context.Background(), Config{Addr: srv.addr(), Path: "/hold", Conns: 3, ResetOnClose: reset})
			if err != nil {
				t.Fatal(err)
			}
			if st := p.Stats(); st.Connected != 3 {
				t.Fatalf("stats: %+v", st)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				select {
				case err := <-srv.readErrs:
					if got := strings.Contains(err.Error(), "reset by peer"); got != reset {
						t.Errorf("server read error %q: reset %v, want %v", err, got, reset)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("server did not notice the close")
				}
			}
		})
	}
}

// DialRate spreads the connects: 20 at 100/s take at least 190 ms, which
// the same dials without a rate do not need.
func TestDialRatePaces(t *testing.T) {
	srv := newTestServer(t)
	p := dial(t, Config{Addr: srv.addr(), Path: "/echo", Conns: 20, DialRate: 100})
	if st := p.Stats(); st.Connected != 20 || st.DialDuration < 190*time.Millisecond {
		t.Fatalf("connected %d in %v, want 20 in at least 190ms", st.Connected, st.DialDuration)
	}
}
