package million

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/naive"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startNaive runs an in-process naive server (memory broker): it speaks
// the client protocol, which is all a load client needs.
func startNaive(t *testing.T) string {
	t.Helper()
	srv, err := naive.New(naive.Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv.Addr().String()
}

// clientProc is RunClient behind a pair of pipes, as the run sees it.
type clientProc struct {
	t     *testing.T
	stdin io.WriteCloser
	lines *bufio.Scanner
	done  chan error
}

func startClient(t *testing.T, cfg ClientConfig) *clientProc {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &clientProc{t: t, stdin: inW, lines: bufio.NewScanner(outR), done: make(chan error, 1)}
	c.lines.Buffer(nil, 1<<20)
	go func() {
		err := RunClient(context.Background(), cfg, inR, outW)
		_ = outW.CloseWithError(io.EOF)
		c.done <- err
	}()
	t.Cleanup(func() {
		_ = inW.Close()
		go func() { // drain what is left so RunClient never blocks writing
			for c.lines.Scan() {
			}
		}()
		if err := <-c.done; err != nil {
			t.Error(err)
		}
	})
	return c
}

func (c *clientProc) send(cmd string) {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.stdin, cmd); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next report line.
func (c *clientProc) next() Report {
	c.t.Helper()
	if !c.lines.Scan() {
		c.t.Fatalf("client output ended: %v", c.lines.Err())
	}
	var r Report
	if err := json.Unmarshal(c.lines.Bytes(), &r); err != nil {
		c.t.Fatalf("report %q: %v", c.lines.Text(), err)
	}
	return r
}

// until reads reports until cond holds (10 s at most).
func (c *clientProc) until(what string, cond func(Report) bool) Report {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.next()
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s; last report %+v", what, r)
		}
	}
}

// A client process subscribes every connection, records each stamped
// message once per connection with its latency, and ends with a final
// report after the close command.
func TestClientSubscribesAndCountsMessages(t *testing.T) {
	addr := startNaive(t)
	const n = 40
	c := startClient(t, ClientConfig{Addr: addr, Conns: n, Sources: []string{"127.0.0.1", "127.0.0.2"},
		Channel: "all", DialsInFlight: 8, ReportEvery: 20 * time.Millisecond})
	if r := c.next(); r.Event != EventReady || r.Conns != n || r.Upgraded != 0 {
		t.Fatalf("first report %+v, want ready with nothing dialed", r)
	}
	c.send(CmdDial)
	r := c.until("every connection subscribed", func(r Report) bool { return r.Dialed && r.Subscribed == n })
	if r.Upgraded != n || r.Failed != 0 || r.SubscribeErrors != 0 || r.HandshakeMaxMs <= 0 {
		t.Fatalf("after the ramp: %+v", r)
	}

	pub, err := drive.DialPublisher(context.Background(), addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sent := time.Now()
	for range 3 { // seq 0, 1, 2
		if err := pub.Publish("all"); err != nil {
			t.Fatal(err)
		}
	}
	r = c.until("three messages everywhere", func(r Report) bool { return r.Received[0b111] == n })
	if len(r.Messages) != 3 || r.Duplicates != 0 || r.Bad != 0 {
		t.Fatalf("report %+v", r)
	}
	for _, m := range r.Messages {
		last := time.Unix(0, m.LastNs)
		if m.Latency.Count != n || last.Before(sent) || time.Since(last) > time.Minute {
			t.Errorf("message %d: %d deliveries, last at %v (sent %v)", m.Seq, m.Latency.Count, last, sent)
		}
	}

	c.send(CmdClose)
	r = c.until("the final report", func(r Report) bool { return r.Event == EventFinal })
	// Connections reset by the client are not closes by the server.
	if r.Closed != 0 || r.Subscribed != n {
		t.Errorf("final report %+v", r)
	}
}

// A stop during the ramp ends it: the aborted dials count as failed.
func TestClientStopAbortsTheRamp(t *testing.T) {
	// Nothing accepts on this listener's backlog beyond the first few,
	// so dials hang until stopped.
	addr := silentListener(t)
	c := startClient(t, ClientConfig{Addr: addr, Conns: 20, Sources: []string{"127.0.0.1"}, Channel: "all",
		DialsInFlight: 4, HandshakeTimeout: time.Minute, ReportEvery: 20 * time.Millisecond})
	c.next()
	c.send(CmdDial)
	c.send(CmdStop)
	r := c.until("the ramp to end", func(r Report) bool { return r.Dialed })
	if r.Failed != 20 || r.Upgraded != 0 {
		t.Errorf("after stop: %+v", r)
	}
}

// silentListener accepts connections and never answers: every handshake
// waits until its timeout or an abort.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}
