package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/bench/pubsub"
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// runPubsub runs "wsbench pubsub" in-process and decodes its JSON line.
func runPubsub(t *testing.T, args ...string) (int, pubsub.Result, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := env{stdout: &stdout, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	code := run(e, append([]string{"pubsub"}, args...))
	var res pubsub.Result
	if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &res) != nil {
		t.Fatalf("exit %d, want one JSON line, got %q; stderr:\n%s", code, stdout.String(), stderr.String())
	}
	return code, res, stderr.String()
}

// startWsgate runs a gateway in this process (so the race detector sees
// the checker's event-loop callbacks) and returns its address.
func startWsgate(t *testing.T) string {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	srv, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv.Addr().String()
}

// TestPubsubAgainstWsgate: a small mixed run (channels, JSON subscribers,
// burst with a lag bound, non-readers) against a real gateway passes.
func TestPubsubAgainstWsgate(t *testing.T) {
	addr := startWsgate(t)
	code, res, stderr := runPubsub(t, "--addrs", addr, "--channels", "3", "--subs-per-channel", "30",
		"--json-subscribers", "10", "--publishers", "4", "--messages", "300", "--size", "200",
		"--mode", "burst", "--window", "16", "--max-lag", "64", "--non-readers", "2", "--resume-after", "50ms", "--timeout", "60s")
	if code != 0 || !res.OK {
		t.Fatalf("exit %d: %+v\n%s", code, res, stderr)
	}
	if res.Subscribers != 90 || res.Publications != 300 || res.ExpectedDeliveries != 300*30 || res.Delivered != res.ExpectedDeliveries {
		t.Fatalf("counts: %+v", res)
	}
	// 100 publications of 200 bytes fit the socket buffers: the
	// non-readers are not cut off, they read everything once resumed.
	if res.NonReaderCloses["open"] != 2 {
		t.Fatalf("non-readers: %v", res.NonReaderCloses)
	}
	if res.Latency.Max <= 0 || res.Latency.P50 > res.Latency.Max {
		t.Fatalf("latency: %+v", res.Latency)
	}
}

// TestPubsubDetectsFaults runs the checker against a fake gateway that
// refuses some publishes with 107 (fine: they are retried) and, in the
// faulty variant, delivers one publication twice to one subscriber and
// drops one for another.
func TestPubsubDetectsFaults(t *testing.T) {
	args := []string{"--channels", "2", "--subs-per-channel", "5", "--json-subscribers", "4",
		"--publishers", "3", "--messages", "60", "--mode", "burst", "--window", "4", "--timeout", "20s", "--stall", "300ms"}

	clean := newFakeGateway(t, nil)
	code, res, stderr := runPubsub(t, append([]string{"--addrs", clean}, args...)...)
	if code != 0 || !res.OK || res.Retries == 0 {
		t.Fatalf("clean run: exit %d, %+v\n%s", code, res, stderr)
	}

	code, res, stderr = runPubsub(t, append([]string{"--addrs", newFakeGateway(t, dupAndLoss)}, args...)...)
	if code != 1 || res.OK || res.Duplicates != 1 || res.Missing != 1 || res.OffsetViolations != 1 {
		t.Fatalf("faulty run: exit %d, %+v", code, res)
	}
	if !strings.Contains(stderr, "FAILED") || !strings.Contains(res.Reason, "1 missing") {
		t.Fatalf("reason %q, stderr:\n%s", res.Reason, stderr)
	}

	// With a lag bound, a reader that stops receiving holds the publishers
	// back; the run must give up after --stall, not hang until --timeout.
	deaf := func(sub int, offset uint64) int {
		if sub == 1 && offset >= 7 {
			return 0
		}
		return 1
	}
	code, res, _ = runPubsub(t, append([]string{"--addrs", newFakeGateway(t, deaf), "--max-lag", "3"}, args...)...)
	if code != 1 || res.Missing == 0 || !strings.Contains(res.Reason, "held") {
		t.Fatalf("faulty run with --max-lag: exit %d, %+v", code, res)
	}
}

// dupAndLoss delivers offset 5 twice to the first subscriber and offset 7
// not at all to the second.
func dupAndLoss(sub int, offset uint64) int {
	switch {
	case sub == 0 && offset == 5:
		return 2
	case sub == 1 && offset == 7:
		return 0
	}
	return 1
}

// fakeGateway speaks enough of the client protocol for the checker:
// subscribe, publish (every 7th refused with 107) and message pushes. Its
// copies(sub, offset) says how often subscriber number sub (in subscribe
// order) gets the publication at offset.
type fakeGateway struct {
	copies func(sub int, offset uint64) int

	mu      sync.Mutex // serializes publishes: one order for everybody
	subs    map[string][]*fakeConn
	order   map[*fakeConn]int
	offsets map[string]uint64
	pubs    int
}

type fakeConn struct {
	ws  *websocket.Conn
	enc codec.Encoding
	mu  sync.Mutex // one writer at a time
}

func (c *fakeConn) send(b []byte) {
	op := websocket.BinaryMessage
	if c.enc == codec.JSON {
		op = websocket.TextMessage
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.WriteMessage(op, b)
}

func newFakeGateway(t *testing.T, copies func(int, uint64) int) string {
	t.Helper()
	if copies == nil {
		copies = func(int, uint64) int { return 1 }
	}
	g := &fakeGateway{copies: copies, subs: map[string][]*fakeConn{}, order: map[*fakeConn]int{}, offsets: map[string]uint64{}}
	up := websocket.Upgrader{Subprotocols: []string{codec.SubprotocolMsgpack, codec.SubprotocolJSON}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		enc, _ := codec.EncodingFor(ws.Subprotocol())
		g.serve(&fakeConn{ws: ws, enc: enc})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func (g *fakeGateway) serve(c *fakeConn) {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var cmd codec.Command
		if err := codec.DecodeCommand(c.enc, msg, &cmd); err != nil {
			return
		}
		switch cmd.Cmd {
		case codec.CmdSubscribe:
			g.subscribe(c, &cmd)
		case codec.CmdPublish:
			g.publish(c, &cmd)
		}
	}
}

func (g *fakeGateway) subscribe(c *fakeConn, cmd *codec.Command) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := string(cmd.Channel)
	g.order[c] = len(g.order)
	g.subs[ch] = append(g.subs[ch], c)
	c.send(codec.AppendReply(nil, c.enc, codec.Reply{ID: cmd.ID, Cmd: codec.CmdSubscribe, Offset: g.offsets[ch], Epoch: "e"}))
}

func (g *fakeGateway) publish(c *fakeConn, cmd *codec.Command) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pubs++
	if g.pubs%7 == 0 {
		c.send(codec.AppendError(nil, c.enc, cmd.ID, codec.CodeRateLimited, "busy"))
		return
	}
	ch := string(cmd.Channel)
	g.offsets[ch]++
	off := g.offsets[ch]
	for _, s := range g.subs[ch] {
		frame := codec.AppendMessage(nil, s.enc, ch, off, "", cmd.Data)
		for range g.copies(g.order[s], off) {
			s.send(frame)
		}
	}
	c.send(codec.AppendReply(nil, c.enc, codec.Reply{ID: cmd.ID, Cmd: codec.CmdPublish, Offset: off, Epoch: "e"}))
}
