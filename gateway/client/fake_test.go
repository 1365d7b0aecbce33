package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/codec"
)

// fakeServer is a scripted wsgate: each test plays the server's side of
// the protocol by hand (real sockets, real WebSocket handshakes), so it can
// send what a real gateway rarely does — duplicates, gaps, epoch changes,
// any close code or HTTP refusal — at the moment it chooses.
type fakeServer struct {
	t     *testing.T
	enc   codec.Encoding
	srv   *httptest.Server
	conns chan *fakeConn
	ctx   context.Context

	mu sync.Mutex
	// refuse, when set, answers handshake n (1-based) with a status and
	// headers instead of upgrading; status 0 upgrades.
	refuse    func(n int) (status int, h http.Header)
	attempts  []time.Time // every handshake
	authz     []string    // each handshake's Authorization header
	noProtoOK bool        // accept without echoing the subprotocol
	deaf      bool        // read nothing: no pong, no close answer
}

type fakeConn struct {
	t     *testing.T
	enc   codec.Encoding
	ws    *websocket.Conn
	ended chan struct{}
	once  sync.Once
	// msgs gets every message the client sends, read by a goroutine of
	// the connection's own (which also answers pings and close frames),
	// then the read error that ended it.
	msgs    chan []byte
	readErr chan error
	// mayFail: writes may fail (the client is expected to hang up).
	mayFail bool
}

// checkLeaks verifies, after every other cleanup of t, that no goroutine
// is left behind.
func checkLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func newFakeServer(t *testing.T, enc codec.Encoding) *fakeServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fs := &fakeServer{t: t, enc: enc, conns: make(chan *fakeConn, 64), ctx: ctx}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.handle))
	t.Cleanup(func() {
		cancel()
		fs.srv.Close()
	})
	return fs
}

func (fs *fakeServer) url() string { return "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/ws" }

func (fs *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	fs.attempts = append(fs.attempts, time.Now())
	fs.authz = append(fs.authz, r.Header.Get("Authorization"))
	n, refuse := len(fs.attempts), fs.refuse
	fs.mu.Unlock()
	if refuse != nil {
		if status, h := refuse(n); status != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			return
		}
	}
	opts := &websocket.AcceptOptions{Subprotocols: []string{fs.enc.Subprotocol()}}
	if fs.noProtoOK {
		opts.Subprotocols = nil
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	fc := &fakeConn{t: fs.t, enc: fs.enc, ws: ws, ended: make(chan struct{}),
		msgs: make(chan []byte, 1024), readErr: make(chan error, 1)}
	fs.mu.Lock()
	deaf := fs.deaf
	fs.mu.Unlock()
	if !deaf {
		go fc.read()
	}
	select {
	case fs.conns <- fc:
	case <-fs.ctx.Done():
	}
	select {
	case <-fc.ended:
	case <-fs.ctx.Done():
	}
	ws.CloseNow()
}

func (fs *fakeServer) setRefuse(fn func(n int) (int, http.Header)) {
	fs.mu.Lock()
	fs.refuse = fn
	fs.mu.Unlock()
}

func (fs *fakeServer) attemptTimes() []time.Time {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]time.Time(nil), fs.attempts...)
}

func (fs *fakeServer) authHeaders() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.authz...)
}

// accept returns the next upgraded connection.
func (fs *fakeServer) accept() *fakeConn {
	fs.t.Helper()
	select {
	case fc := <-fs.conns:
		return fc
	case <-time.After(10 * time.Second):
		fs.t.Fatal("no connection came")
		return nil
	}
}

// noConnectionFor fails if a connection is upgraded within d.
func (fs *fakeServer) noConnectionFor(d time.Duration) {
	fs.t.Helper()
	select {
	case <-fs.conns:
		fs.t.Fatal("the client connected again")
	case <-time.After(d):
	}
}

func (fc *fakeConn) read() {
	for {
		_, msg, err := fc.ws.Read(context.Background())
		if err != nil {
			fc.readErr <- err
			return
		}
		fc.msgs <- msg
	}
}

// cmd returns the next command.
func (fc *fakeConn) cmd() codec.Command {
	fc.t.Helper()
	var msg []byte
	select {
	case msg = <-fc.msgs:
	case err := <-fc.readErr:
		fc.t.Fatalf("fake server: read command: %v", err)
	case <-time.After(10 * time.Second):
		fc.t.Fatal("fake server: no command came")
	}
	var c codec.Command
	if err := codec.DecodeCommand(fc.enc, msg, &c); err != nil {
		fc.t.Fatalf("fake server: bad command %q: %v", msg, err)
	}
	return c
}

// expect reads the next command and checks its type and channel.
func (fc *fakeConn) expect(cmd codec.CommandType, channel string) codec.Command {
	fc.t.Helper()
	c := fc.cmd()
	if c.Cmd != cmd || string(c.Channel) != channel {
		fc.t.Fatalf("fake server: got %v %q, want %v %q", c.Cmd, c.Channel, cmd, channel)
	}
	return c
}

// closed skips commands until the client closes; it returns the read
// error that ended the connection.
func (fc *fakeConn) closed() error {
	fc.t.Helper()
	for {
		select {
		case <-fc.msgs:
		case err := <-fc.readErr:
			return err
		case <-time.After(10 * time.Second):
			fc.t.Fatal("fake server: the client did not close")
		}
	}
}

func (fc *fakeConn) send(frame []byte) {
	fc.t.Helper()
	typ := websocket.MessageBinary
	if fc.enc == codec.JSON {
		typ = websocket.MessageText
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fc.ws.Write(ctx, typ, frame); err != nil && !fc.mayFail {
		fc.t.Fatalf("fake server: write: %v", err)
	}
}

func (fc *fakeConn) reply(r codec.Reply) { fc.send(codec.AppendReply(nil, fc.enc, r)) }

func (fc *fakeConn) replyErr(id uint32, code codec.ErrorCode) {
	fc.send(codec.AppendError(nil, fc.enc, id, code, ""))
}

func (fc *fakeConn) message(channel string, offset uint64, epoch string, data string) {
	fc.send(codec.AppendMessage(nil, fc.enc, channel, offset, epoch, []byte(data)))
}

// subscribed answers a subscribe command.
func (fc *fakeConn) subscribed(c codec.Command, top uint64, epoch string, recovered bool, reason string) {
	fc.reply(codec.Reply{ID: c.ID, Cmd: codec.CmdSubscribe, Offset: top, Epoch: epoch,
		Resumed: c.HasOffset, Recovered: recovered, Reason: reason})
}

// closeWith closes the connection with a close frame and the client's
// answer.
func (fc *fakeConn) closeWith(code websocket.StatusCode, reason string) {
	_ = fc.ws.Close(code, reason)
	fc.end()
}

// drop ends the TCP connection without a close frame.
func (fc *fakeConn) drop() {
	fc.ws.CloseNow()
	fc.end()
}

func (fc *fakeConn) end() { fc.once.Do(func() { close(fc.ended) }) }

// recorder collects a subscription's events and the client's states.
type recorder struct {
	mu     sync.Mutex
	events []Event
	states []State
	wake   chan struct{}
	// before, when set, runs in the handler before ev is recorded (a
	// test's way to make the handlers lag behind the reader).
	before func(ev Event)
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) handle(ev Event) {
	if r.before != nil {
		r.before(ev)
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	notify(r.wake)
}

func (r *recorder) state(s State) {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
	notify(r.wake)
}

// waitFor waits until cond holds for the recorded events and states.
func (r *recorder) waitFor(t *testing.T, what string, cond func(evs []Event, sts []State) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.events, r.states)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.wake:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s; events %v; states %v", what, r.events, r.states)
		}
	}
}

// waitEvents waits for n events and returns them.
func (r *recorder) waitEvents(t *testing.T, n int) []Event {
	t.Helper()
	r.waitFor(t, "events", func(evs []Event, _ []State) bool { return len(evs) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func (r *recorder) waitState(t *testing.T, kind StateKind, nth int) State {
	t.Helper()
	var found State
	r.waitFor(t, kind.String()+" state", func(_ []Event, sts []State) bool {
		n := 0
		for _, s := range sts {
			if s.Kind == kind {
				if n++; n == nth {
					found = s
					return true
				}
			}
		}
		return false
	})
	return found
}

// dialFake connects a client to fs and answers nothing yet.
func dialFake(t *testing.T, fs *fakeServer, rec *recorder, mutate func(*Options)) (*Client, *fakeConn) {
	t.Helper()
	opts := Options{Encoding: fs.enc, PingInterval: -1, Backoff: Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}}
	if rec != nil {
		opts.OnState = rec.state
	}
	if mutate != nil {
		mutate(&opts)
	}
	type dialed struct {
		c   *Client
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := Dial(context.Background(), fs.url(), opts)
		ch <- dialed{c, err}
	}()
	fc := fs.accept()
	d := <-ch
	if d.err != nil {
		t.Fatalf("Dial: %v", d.err)
	}
	t.Cleanup(func() { d.c.Close() })
	return d.c, fc
}

// subscribeFake subscribes through fc, answering with top and epoch.
func subscribeFake(t *testing.T, c *Client, fc *fakeConn, channel string, top uint64, epoch string, rec *recorder) *Subscription {
	t.Helper()
	type result struct {
		sub *Subscription
		err error
	}
	ch := make(chan result, 1)
	go func() {
		sub, err := c.Subscribe(context.Background(), channel, rec.handle)
		ch <- result{sub, err}
	}()
	cmd := fc.expect(codec.CmdSubscribe, channel)
	if cmd.HasOffset {
		t.Fatalf("a first subscribe carried a position")
	}
	fc.subscribed(cmd, top, epoch, false, "")
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Subscribe: %v", r.err)
		}
		return r.sub
	case <-time.After(10 * time.Second):
		t.Fatalf("Subscribe(%q) not answered in 10s (the connection ended?)", channel)
		return nil
	}
}
