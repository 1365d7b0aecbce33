package gateway

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker/memory"
	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/gateway/presence"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// Session tests run the client protocol on a fake transport: no socket, no
// event loop, just the server's hub, memory broker and presence.

// fakeTransport records what a session asks of its connection.
type fakeTransport struct {
	mu      sync.Mutex
	frames  [][]byte // every frame queued, in order
	closed  uint16   // close code, 0: open
	limit   int      // queue limit for overLimit (0: none)
	replans int
}

func (f *fakeTransport) add(frames ...[]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed == 0 {
		f.frames = append(f.frames, frames...)
	}
}

func (f *fakeTransport) send(frame []byte)                { f.add(frame) }
func (f *fakeTransport) write(frame []byte)               { f.add(frame) }
func (f *fakeTransport) writeAll(frames [][]byte, _ bool) { f.add(frames...) }
func (f *fakeTransport) enqueue(frames [][]byte) bool     { f.add(frames...); return true }
func (f *fakeTransport) flush()                           {}
func (f *fakeTransport) runOnWorker(fn func())            { fn() }
func (f *fakeTransport) replan()                          { f.replans++ }
func (f *fakeTransport) close(code uint16, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed == 0 {
		f.closed = code
	}
}

func (f *fakeTransport) overLimit(extra int) bool {
	if f.limit > 0 && extra > f.limit {
		f.close(CloseSlowConsumer, "slow consumer")
		return true
	}
	return false
}

// messages decodes the JSON frames queued so far and forgets them.
func (f *fakeTransport) messages(t *testing.T) []map[string]any {
	t.Helper()
	f.mu.Lock()
	frames := f.frames
	f.frames = nil
	f.mu.Unlock()
	var out []map[string]any
	for _, fr := range frames {
		if wsframe.Opcode(fr[0]&0x0f) != wsframe.OpText {
			t.Fatalf("frame opcode %#x, want text", fr[0]&0x0f)
		}
		n, hdr := int(fr[1]&0x7f), 2
		if n == 126 {
			hdr = 4
		} else if n == 127 {
			hdr = 10
		}
		var m map[string]any
		if err := json.Unmarshal(fr[hdr:], &m); err != nil {
			t.Fatalf("frame %q: %v", fr[hdr:], err)
		}
		out = append(out, m)
	}
	return out
}

// testServer is a Server with what sessions use and no listener.
func testServer(t *testing.T, mutate func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = "n1"
	if mutate != nil {
		mutate(&cfg)
	}
	s := &Server{cfg: cfg, start: time.Now()}
	s.ns = s.cfg.namespaces()
	s.presence = presence.NewMemory()
	s.broker = memory.NewWithConfig(memory.Config{Node: cfg.NodeID, History: s.ns.HistoryPolicy()})
	s.hub = hub.New(hub.Config{}, s.broker)
	if err := s.broker.Start(s.hub); err != nil {
		t.Fatal(err)
	}
	s.hub.Start()
	t.Cleanup(func() { s.hub.Close(); s.broker.Close(); s.presence.Close() })
	return s
}

func newTestSession(t *testing.T, s *Server, id Identity) (*session, *fakeTransport) {
	f := &fakeTransport{}
	return newSession(f, s, codec.JSON, 7, 42, id), f
}

// command runs one JSON command on the session's worker (the test).
func command(t *testing.T, s *session, cmd string) {
	t.Helper()
	if err := s.onMessage(wsframe.OpText, []byte(cmd)); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
}

// waitMessages waits for n messages (broker callbacks may be async).
func waitMessages(t *testing.T, f *fakeTransport, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		got = append(got, f.messages(t)...)
		if len(got) < n {
			time.Sleep(time.Millisecond)
		}
	}
	if len(got) != n {
		t.Fatalf("got %d messages %v, want %d", len(got), got, n)
	}
	return got
}

func TestSessionIdleHoldsNoSubscriptionState(t *testing.T) {
	srv := testServer(t, nil)
	s, f := newTestSession(t, srv, Identity{})
	if s.ident != nil || s.sub != nil {
		t.Fatalf("a fresh anonymous session holds ident %v, sub %v", s.ident, s.sub)
	}
	command(t, s, `{"id":1,"cmd":"ping"}`)
	command(t, s, `{"id":0,"cmd":"ping"}`) // id 0: no reply wanted
	command(t, s, `{"id":2,"cmd":"unsubscribe","channel":"a"}`)
	got := f.messages(t)
	if len(got) != 2 || got[0]["id"] != 1.0 || got[1]["error"] == nil {
		t.Fatalf("replies %v", got)
	}
	if s.sub != nil {
		t.Fatal("commands other than subscribe allocated subscription state")
	}
	if s.id() != "n1-7-16" {
		t.Fatalf("client id %q, want n1-7-16 (node, seq, fd in base 36)", s.id())
	}
}

func TestSessionSubscribeDeliverUnsubscribe(t *testing.T) {
	srv := testServer(t, nil)
	s, f := newTestSession(t, srv, Identity{UserID: "u1"})
	command(t, s, `{"id":1,"cmd":"subscribe","channel":"news"}`)
	if r := waitMessages(t, f, 1)[0]; r["id"] != 1.0 || r["error"] != nil {
		t.Fatalf("subscribe reply %v", r)
	}
	if s.sub == nil || srv.hub.Subscribers("news") != 1 {
		t.Fatalf("sub %v, hub subscribers %d", s.sub, srv.hub.Subscribers("news"))
	}
	command(t, s, `{"id":2,"cmd":"subscribe","channel":"news"}`)
	if r := waitMessages(t, f, 1)[0]; r["error"] == nil {
		t.Fatalf("second subscribe: %v, want an error", r)
	}
	command(t, s, `{"id":3,"cmd":"publish","channel":"news","data":{"x":1}}`)
	got := waitMessages(t, f, 2) // the reply and the message, in either order
	types := map[any]bool{got[0]["type"]: true, got[1]["type"]: true}
	if !types["reply"] || !types["message"] {
		t.Fatalf("after publish: %v", got)
	}
	command(t, s, `{"id":4,"cmd":"unsubscribe","channel":"news"}`)
	if r := waitMessages(t, f, 1)[0]; r["id"] != 4.0 || r["error"] != nil {
		t.Fatalf("unsubscribe reply %v", r)
	}
	if n := srv.hub.Subscribers("news"); n != 0 {
		t.Fatalf("hub subscribers after unsubscribe: %d", n)
	}
}

func TestSessionResumeReplaysMissed(t *testing.T) {
	srv := testServer(t, nil)
	pub, pf := newTestSession(t, srv, Identity{})
	for i := 1; i <= 3; i++ {
		command(t, pub, `{"id":9,"cmd":"publish","channel":"r","data":1}`)
	}
	first := waitMessages(t, pf, 3)[0]
	epoch := first["epoch"].(string)
	s, f := newTestSession(t, srv, Identity{})
	command(t, s, `{"id":1,"cmd":"subscribe","channel":"r","offset":1,"epoch":"`+epoch+`"}`)
	got := waitMessages(t, f, 3)
	if got[0]["recovered"] != true || got[1]["offset"] != 2.0 || got[2]["offset"] != 3.0 {
		t.Fatalf("resume: %v", got)
	}
	command(t, s, `{"id":2,"cmd":"subscribe","channel":"q","offset":5,"epoch":"other"}`)
	if r := waitMessages(t, f, 1)[0]; r["recovered"] == true {
		t.Fatalf("resume from another epoch: %v, want recovered false", r)
	}
}

func TestSessionWrongFrameTypeAndRateLimit(t *testing.T) {
	srv := testServer(t, func(c *Config) { c.CommandRate, c.CommandBurst = 1, 2 })
	s, f := newTestSession(t, srv, Identity{})
	err := s.onMessage(wsframe.OpBinary, []byte(`{"id":1,"cmd":"ping"}`))
	if fe, ok := err.(*wsframe.Error); !ok || fe.Code != wsframe.CloseUnsupported {
		t.Fatalf("binary frame on JSON: %v", err)
	}
	var closeErr error
	for range 6 {
		if closeErr = s.onMessage(wsframe.OpText, []byte(`{"id":1,"cmd":"ping"}`)); closeErr != nil {
			break
		}
	}
	if fe, ok := closeErr.(*wsframe.Error); !ok || fe.Code != CloseRateLimited {
		t.Fatalf("over the rate: %v, want close %d", closeErr, CloseRateLimited)
	}
	limited := 0
	for _, m := range f.messages(t) {
		if e, ok := m["error"].(map[string]any); ok && e["code"] == float64(codec.CodeRateLimited) {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no rate-limited error reply before the close")
	}
}

func TestSessionTokenExpiry(t *testing.T) {
	srv := testServer(t, func(c *Config) { c.RefreshGrace = time.Minute })
	exp := time.Now().Add(time.Hour)
	s, f := newTestSession(t, srv, Identity{UserID: "u", ExpiresAt: exp})
	if next, open := s.checkExpiry(exp.Add(-time.Second)); !open || !next.Equal(exp) {
		t.Fatalf("before expiry: %v %v", next, open)
	}
	if next, open := s.checkExpiry(exp.Add(time.Second)); !open || !next.Equal(exp.Add(time.Minute)) {
		t.Fatalf("in the grace period: %v %v", next, open)
	}
	s.checkExpiry(exp.Add(2 * time.Second)) // asked once only
	if got := f.messages(t); len(got) != 1 || got[0]["type"] != "refresh" {
		t.Fatalf("pushes %v, want one refresh", got)
	}
	if _, open := s.checkExpiry(exp.Add(2 * time.Minute)); open || f.closed != CloseTokenExpired {
		t.Fatalf("past the grace: open %v, close %d", open, f.closed)
	}
}

func TestSessionEnqueue(t *testing.T) {
	srv := testServer(t, nil)
	s, f := newTestSession(t, srv, Identity{})
	s.subscribed()
	own := &codec.Publication{Kind: codec.KindJoin, Channel: []byte("c"), Client: []byte(s.id())}
	if s.Enqueue([]*codec.Publication{own}, [][]byte{[]byte("join")}) {
		t.Fatal("a session was sent its own join")
	}
	other := &codec.Publication{Kind: codec.KindPublication, Channel: []byte("c"), Offset: 5}
	if !s.Enqueue([]*codec.Publication{other}, [][]byte{[]byte("pub")}) || len(f.frames) != 1 {
		t.Fatalf("a publication was not queued: %q", f.frames)
	}
	// A run with the session's own join in the middle: the rest goes out,
	// in order.
	f.frames = nil
	run := []*codec.Publication{other, own, other}
	if !s.Enqueue(run, [][]byte{[]byte("a"), []byte("join"), []byte("b")}) || len(f.frames) != 2 ||
		string(f.frames[0]) != "a" || string(f.frames[1]) != "b" {
		t.Fatalf("run with own join queued %q, want a, b", f.frames)
	}
	f.frames = f.frames[:1]
	// While c recovers, live frames are held, counted against the limit.
	f.limit = 10
	rec := s.startRecovery("c", 1)
	if s.Enqueue([]*codec.Publication{other}, [][]byte{[]byte("held")}) || len(f.frames) != 1 {
		t.Fatal("a frame of a recovering channel was not held")
	}
	if !s.Enqueue([]*codec.Publication{other}, [][]byte{make([]byte, 20)}) || f.closed != CloseSlowConsumer {
		t.Fatalf("held frames over the limit: close %d", f.closed)
	}
	if !s.dropRecovery("c", rec) || s.dropRecovery("c", rec) {
		t.Fatal("dropRecovery: the hold was not c's once, then gone")
	}
}
