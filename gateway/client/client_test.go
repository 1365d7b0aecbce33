package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/codec"
)

func pubs(evs []Event) []string {
	var out []string
	for _, e := range evs {
		if p, ok := e.(Publication); ok {
			out = append(out, fmt.Sprintf("%s/%d:%s", p.Epoch, p.Offset, p.Data))
		}
	}
	return out
}

func countPubs(evs []Event) int { return len(pubs(evs)) }

// Publications arrive once each, in offset order: repeats and older
// offsets of the same epoch are dropped.
func TestDeliversOnceInOrder(t *testing.T) {
	checkLeaks(t)
	for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
		t.Run(enc.String(), func(t *testing.T) {
			fs := newFakeServer(t, enc)
			rec := newRecorder()
			c, fc := dialFake(t, fs, rec, nil)
			subscribeFake(t, c, fc, "chat:a", 10, "e1", rec)
			for _, off := range []uint64{9, 10, 11, 12, 11, 12, 13, 5} {
				fc.message("chat:a", off, "e1", fmt.Sprintf(`"m%d"`, off))
			}
			rec.waitFor(t, "13", func(evs []Event, _ []State) bool { return countPubs(evs) >= 3 })
			want := []string{`e1/11:"m11"`, `e1/12:"m12"`, `e1/13:"m13"`}
			time.Sleep(50 * time.Millisecond) // nothing else may come
			rec.mu.Lock()
			got := pubs(rec.events)
			first := rec.events[0]
			rec.mu.Unlock()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
			if s, ok := first.(Subscribed); !ok || s.Resumed || s.Offset != 10 || s.Epoch != "e1" {
				t.Fatalf("first event %#v, want Subscribed at 10/e1", first)
			}
			c.Close()
		})
	}
}

// After the server goes away the client reconnects, resubscribes with its
// position and drops what the replay repeats at the seam.
func TestResumeAfterReconnect(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	rec := newRecorder()
	c, fc := dialFake(t, fs, rec, nil)
	sub := subscribeFake(t, c, fc, "c", 0, "e1", rec)
	fc.message("c", 1, "e1", "one")
	fc.message("c", 2, "e1", "two")
	rec.waitFor(t, "two", func(evs []Event, _ []State) bool { return countPubs(evs) == 2 })
	fc.closeWith(websocket.StatusGoingAway, "drain")

	fc2 := fs.accept()
	cmd := fc2.expect(codec.CmdSubscribe, "c")
	if !cmd.HasOffset || cmd.Offset != 2 || string(cmd.Epoch) != "e1" {
		t.Fatalf("resubscribe at %d/%q (has %v), want 2/e1", cmd.Offset, cmd.Epoch, cmd.HasOffset)
	}
	fc2.subscribed(cmd, 4, "e1", true, "")
	fc2.message("c", 2, "e1", "two again") // the seam
	fc2.message("c", 3, "e1", "three")
	fc2.message("c", 4, "e1", "four")
	rec.waitFor(t, "four", func(evs []Event, _ []State) bool { return countPubs(evs) == 4 })
	evs := rec.waitEvents(t, 6)
	if got, want := pubs(evs), []string{"e1/1:one", "e1/2:two", "e1/3:three", "e1/4:four"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	var resumed []Subscribed
	for _, e := range evs {
		if s, ok := e.(Subscribed); ok && s.Resumed {
			resumed = append(resumed, s)
		}
	}
	if len(resumed) != 1 || !resumed[0].Recovered || resumed[0].Lost() {
		t.Fatalf("resume events %+v, want one recovered", resumed)
	}
	if off, ep := sub.Position(); off != 4 || ep != "e1" {
		t.Fatalf("position %d/%s, want 4/e1", off, ep)
	}
	st := rec.waitState(t, StateDisconnected, 1)
	if st.Code != 1001 || st.Reason != "drain" {
		t.Fatalf("disconnected state %+v, want code 1001", st)
	}
}

// Everything that means "you may have missed something" reaches the
// handler as an explicit event, and the position follows the server.
func TestLossIsExplicit(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.JSON)
	rec := newRecorder()
	c, fc := dialFake(t, fs, rec, nil)
	sub := subscribeFake(t, c, fc, "c", 5, "e1", rec)
	fc.message("c", 6, "e1", "6")
	fc.send(codec.AppendGap(nil, codec.JSON, "c", 7, 9))
	fc.message("c", 8, "e1", "8") // inside the gap: already declared lost
	fc.message("c", 10, "e1", "10")
	// The hub announces gaps to every subscriber; only what this one has
	// not had reaches its handler.
	fc.send(codec.AppendGap(nil, codec.JSON, "c", 9, 10))  // all had: no event
	fc.send(codec.AppendGap(nil, codec.JSON, "c", 10, 11)) // 10 delivered: 11 lost
	fc.send(codec.AppendEpoch(nil, codec.JSON, "c", "e2", "e1", 11))
	fc.message("c", 1, "e2", "1")
	fc.message("c", 1, "e3", "1") // a new epoch without a push
	rec.waitFor(t, "e3", func(evs []Event, _ []State) bool { return countPubs(evs) == 4 })
	evs := rec.waitEvents(t, 9)
	want := []Event{
		Subscribed{Channel: "c", Offset: 5, Epoch: "e1"},
		Publication{Channel: "c", Offset: 6, Epoch: "e1", Data: []byte("6")},
		Gap{Channel: "c", From: 7, To: 9},
		Publication{Channel: "c", Offset: 10, Epoch: "e1", Data: []byte("10")},
		Gap{Channel: "c", From: 11, To: 11},
		EpochChanged{Channel: "c", Previous: "e1", Epoch: "e2", LastOffset: 11},
		Publication{Channel: "c", Offset: 1, Epoch: "e2", Data: []byte("1")},
		EpochChanged{Channel: "c", Previous: "e2", Epoch: "e3", LastOffset: 1},
		Publication{Channel: "c", Offset: 1, Epoch: "e3", Data: []byte("1")},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Fatalf("events\n got  %#v\n want %#v", evs, want)
	}

	// A resume the server cannot serve: recovered false, a new position.
	fc.drop()
	fc2 := fs.accept()
	cmd := fc2.expect(codec.CmdSubscribe, "c")
	if cmd.Offset != 1 || string(cmd.Epoch) != "e3" {
		t.Fatalf("resubscribe at %d/%s, want 1/e3", cmd.Offset, cmd.Epoch)
	}
	fc2.subscribed(cmd, 40, "e4", false, "epoch changed")
	evs = rec.waitEvents(t, 10)
	if s, ok := evs[9].(Subscribed); !ok || !s.Lost() || s.Reason != "epoch changed" || s.Offset != 40 || s.Epoch != "e4" {
		t.Fatalf("event %#v, want Subscribed lost at 40/e4", evs[9])
	}
	if off, ep := sub.Position(); off != 40 || ep != "e4" {
		t.Fatalf("position %d/%s", off, ep)
	}
}

// TestFinalCloseDuringSubscribe: a Subscribe still waiting for its reply
// when the client stops for good returns the error; its handler hears
// nothing (it was never given a subscription), while a confirmed one's
// hears Unsubscribed.
func TestFinalCloseDuringSubscribe(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	c, fc := dialFake(t, fs, nil, nil)
	confirmed := newRecorder()
	subscribeFake(t, c, fc, "a", 0, "e", confirmed)
	pending := newRecorder()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(context.Background(), "b", pending.handle)
		errc <- err
	}()
	fc.expect(codec.CmdSubscribe, "b")
	fc.closeWith(4500, "gone for good")
	if err := <-errc; err == nil {
		t.Fatal("Subscribe succeeded on a client that stopped")
	}
	<-c.Done()
	confirmed.waitFor(t, "Unsubscribed", func(evs []Event, _ []State) bool {
		_, ok := evs[len(evs)-1].(Unsubscribed)
		return ok
	})
	time.Sleep(100 * time.Millisecond) // the event goroutine would have delivered it by now
	pending.mu.Lock()
	defer pending.mu.Unlock()
	if len(pending.events) != 0 {
		t.Fatalf("the failed Subscribe's handler got %v", pending.events)
	}
}

// The close-code table of codec/README.md §8.
func TestCloseCodes(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct {
		code  websocket.StatusCode
		final bool
	}{
		{1000, false}, {1001, false}, {4000, false}, {4004, false}, {4008, false}, {4029, false}, {4499, false},
		{4500, true}, {4503, true}, {4999, true}, {1002, true}, {1003, true}, {1007, true}, {1009, true},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			fs := newFakeServer(t, codec.Msgpack)
			rec := newRecorder()
			c, fc := dialFake(t, fs, rec, nil)
			fc.closeWith(tc.code, "bye")
			if !tc.final {
				fs.accept()
				st := rec.waitState(t, StateDisconnected, 1)
				if st.Code != int(tc.code) {
					t.Fatalf("disconnected with %d, want %d", st.Code, tc.code)
				}
				if w := c.opts.Backoff.window(0, true); (tc.code == 4008 || tc.code == 4029) && st.Delay < w/2 {
					t.Fatalf("after %d waited %v, want at least %v", tc.code, st.Delay, w/2)
				}
				return
			}
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the client did not stop")
			}
			var ce *CloseError
			if !errors.As(c.Err(), &ce) || ce.Code != int(tc.code) {
				t.Fatalf("Err() = %v, want a CloseError %d", c.Err(), tc.code)
			}
			if st := rec.waitState(t, StateClosed, 1); st.Code != int(tc.code) {
				t.Fatalf("closed state %+v", st)
			}
			fs.noConnectionFor(300 * time.Millisecond)
		})
	}
}

// A refused handshake: 401 and 403 stop; 429 and 503 wait for Retry-After.
func TestHandshakeRefusals(t *testing.T) {
	checkLeaks(t)
	t.Run("first dial", func(t *testing.T) {
		fs := newFakeServer(t, codec.Msgpack)
		fs.setRefuse(func(int) (int, http.Header) { return http.StatusUnauthorized, nil })
		_, err := Dial(context.Background(), fs.url(), Options{})
		var he *HandshakeError
		if !errors.As(err, &he) || he.StatusCode != 401 {
			t.Fatalf("Dial: %v, want HandshakeError 401", err)
		}
	})
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fs := newFakeServer(t, codec.Msgpack)
			rec := newRecorder()
			c, fc := dialFake(t, fs, rec, nil)
			fs.setRefuse(func(int) (int, http.Header) { return status, nil })
			fc.drop()
			<-c.Done()
			var he *HandshakeError
			if !errors.As(c.Err(), &he) || he.StatusCode != status {
				t.Fatalf("Err() = %v", c.Err())
			}
			time.Sleep(300 * time.Millisecond)
			if n := len(fs.attemptTimes()); n != 2 {
				t.Fatalf("%d handshakes, want 2 (no retry after %d)", n, status)
			}
		})
	}
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fs := newFakeServer(t, codec.Msgpack)
			rec := newRecorder()
			_, fc := dialFake(t, fs, rec, nil)
			fs.setRefuse(func(n int) (int, http.Header) {
				if n == 2 {
					return status, http.Header{"Retry-After": {"1"}}
				}
				return 0, nil
			})
			fc.drop()
			fs.accept()
			at := fs.attemptTimes()
			if gap := at[2].Sub(at[1]); gap < time.Second {
				t.Fatalf("retried %v after a %d with Retry-After: 1", gap, status)
			}
		})
	}
}

// Publish retries what is safe to retry, with the same idempotency key.
func TestPublishRetries(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	c, fc := dialFake(t, fs, nil, nil)
	type result struct {
		res PublishResult
		err error
	}
	publish := func(opts ...PublishOption) chan result {
		ch := make(chan result, 1)
		go func() {
			res, err := c.Publish(context.Background(), "c", []byte("x"), opts...)
			ch <- result{res, err}
		}()
		return ch
	}

	// 107 then success: retried without a key.
	ch := publish()
	cmd := fc.expect(codec.CmdPublish, "c")
	fc.replyErr(cmd.ID, codec.CodeRateLimited)
	cmd = fc.expect(codec.CmdPublish, "c")
	fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdPublish, Offset: 7, Epoch: "e"})
	if r := <-ch; r.err != nil || r.res.Offset != 7 {
		t.Fatalf("after 107: %+v", r)
	}

	// 113 without a key: not retried, the outcome is unknown.
	ch = publish()
	cmd = fc.expect(codec.CmdPublish, "c")
	fc.replyErr(cmd.ID, codec.CodeOutcomeUnknown)
	var se *ServerError
	if r := <-ch; !errors.Is(r.err, ErrOutcomeUnknown) || !errors.As(r.err, &se) || se.Code != 113 {
		t.Fatalf("113 without a key: %v", r.err)
	}

	// 113 with a key: retried with the same key, the replay is reported.
	ch = publish(WithIdempotencyKey("k1"))
	cmd = fc.expect(codec.CmdPublish, "c")
	fc.replyErr(cmd.ID, codec.CodeOutcomeUnknown)
	cmd2 := fc.expect(codec.CmdPublish, "c")
	if string(cmd.IdempotencyKey) != "k1" || string(cmd2.IdempotencyKey) != "k1" {
		t.Fatalf("keys %q, %q", cmd.IdempotencyKey, cmd2.IdempotencyKey)
	}
	fc.reply(codec.Reply{ID: cmd2.ID, Cmd: codec.CmdPublish, Offset: 8, Epoch: "e", Replayed: true})
	if r := <-ch; r.err != nil || !r.res.Replayed || r.res.Offset != 8 {
		t.Fatalf("113 with a key: %+v", r)
	}

	// The connection drops before the reply: with a key, sent again on
	// the next connection.
	ch = publish(WithIdempotencyKey("k2"))
	fc.expect(codec.CmdPublish, "c")
	fc.drop()
	fc = fs.accept()
	cmd = fc.expect(codec.CmdPublish, "c")
	if string(cmd.IdempotencyKey) != "k2" {
		t.Fatalf("key %q after reconnect", cmd.IdempotencyKey)
	}
	fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdPublish, Offset: 9, Epoch: "e"})
	if r := <-ch; r.err != nil || r.res.Offset != 9 {
		t.Fatalf("after a drop: %+v", r)
	}

	// Without a key a drop is reported, not retried.
	ch = publish()
	fc.expect(codec.CmdPublish, "c")
	fc.drop()
	if r := <-ch; !errors.Is(r.err, ErrOutcomeUnknown) || !errors.Is(r.err, ErrDisconnected) {
		t.Fatalf("drop without a key: %v", r.err)
	}
	fc = fs.accept()

	// A ctx that ends after the publish was sent: it may have been
	// published, so the outcome is unknown (not a bare ctx error), even
	// with a key (no time is left to retry); the late reply is ignored.
	for _, opts := range [][]PublishOption{nil, {WithIdempotencyKey("k3")}} {
		ctx, cancel := context.WithCancel(context.Background())
		ch = make(chan result, 1)
		go func() {
			res, err := c.Publish(ctx, "c", []byte("x"), opts...)
			ch <- result{res, err}
		}()
		cmd = fc.expect(codec.CmdPublish, "c")
		cancel()
		if r := <-ch; !errors.Is(r.err, ErrOutcomeUnknown) || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("ctx ended after the send (options %d): %v", len(opts), r.err)
		}
		fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdPublish, Offset: 10, Epoch: "e"})
	}

	// Close ends a publish that waits for its reply.
	ch = publish()
	c.Close()
	if r := <-ch; r.err == nil {
		t.Fatal("publish on a closed client succeeded")
	}
}

// History, presence and presence_stats replies are decoded into results.
// A command on a session that has ended, its socket not yet closed, is
// not written: it cannot have taken effect, so it is not counted as sent,
// and a publish without a key is retried on the next connection rather
// than reported as of unknown outcome.
func TestNotSentOnAnEndedSession(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.JSON)
	c, fc := dialFake(t, fs, nil, nil)
	s, err := c.session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.end(errors.New("test: the session ended")) // as its reader would, just before closing the socket
	cmd := &codec.Command{Cmd: codec.CmdPublish, Channel: []byte("c"), Data: []byte("1")}
	if err := s.send(cmd, func(*codec.ServerFrame, error) { t.Error("a command not sent was answered") }); !errors.Is(err, errNotSent) || !errors.Is(err, ErrDisconnected) {
		t.Fatalf("send on an ended session: %v, want errNotSent", err)
	}
	s.mu.Lock()
	pending := len(s.pending)
	s.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d replies pending for a command not sent", pending)
	}
	_ = s.ws.CloseNow()

	// A publish made now may find the ended session still current (then
	// it is not sent and is retried) or the next one: either way it is
	// published once, on the next connection, and succeeds.
	type result struct {
		res PublishResult
		err error
	}
	ch := make(chan result, 1)
	go func() {
		res, err := c.Publish(context.Background(), "c", []byte("2"))
		ch <- result{res, err}
	}()
	for done := false; !done; {
		select {
		case msg := <-fc.msgs:
			t.Fatalf("the ended connection was sent %q", msg)
		case <-fc.readErr:
			done = true
		case <-time.After(10 * time.Second):
			t.Fatal("the ended connection was not closed")
		}
	}
	fc = fs.accept()
	got := fc.expect(codec.CmdPublish, "c")
	fc.reply(codec.Reply{ID: got.ID, Cmd: codec.CmdPublish, Offset: 1, Epoch: "e"})
	if r := <-ch; r.err != nil || r.res.Offset != 1 {
		t.Fatalf("publish after the session ended: %+v", r)
	}
}

// A Subscribe given up while in flight (its ctx ended) is undone by an
// unsubscribe when its reply comes; a new Subscribe of the channel made
// meanwhile, which the server refuses with 104 because it still has the
// first, is sent again after the undo and succeeds.
func TestSubscribeAgainWhileTheFirstIsUndone(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.JSON)
	c, fc := dialFake(t, fs, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(ctx, "c", func(Event) {})
		gaveUp <- err
	}()
	first := fc.expect(codec.CmdSubscribe, "c")
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("the first Subscribe: %v, want its ctx's error", err)
	}
	type result struct {
		sub *Subscription
		err error
	}
	again := make(chan result, 1)
	go func() {
		sub, err := c.Subscribe(context.Background(), "c", func(Event) {})
		again <- result{sub, err}
	}()
	second := fc.expect(codec.CmdSubscribe, "c")
	fc.replyErr(second.ID, codec.CodeAlreadySubscribed) // the server still has the first
	fc.subscribed(first, 5, "e", false, "")
	// The undo, and the retry (its delay is jittered, so either may come
	// first): a retry made before the undo is answered is refused with 104
	// too, and retried again.
	var undo, retried codec.Command
	for range 2 {
		switch cmd := fc.cmd(); cmd.Cmd {
		case codec.CmdUnsubscribe:
			undo = cmd
		case codec.CmdSubscribe:
			retried = cmd
		}
	}
	if undo.ID == 0 || retried.ID == 0 {
		t.Fatalf("want an unsubscribe with an id and a subscribe; got %+v and %+v", undo, retried)
	}
	fc.replyErr(retried.ID, codec.CodeAlreadySubscribed)
	fc.reply(codec.Reply{ID: undo.ID, Cmd: codec.CmdUnsubscribe})
	third := fc.expect(codec.CmdSubscribe, "c")
	fc.subscribed(third, 5, "e", false, "")
	if r := <-again; r.err != nil || r.sub == nil {
		t.Fatalf("the second Subscribe: %v", r.err)
	}
}

func TestReads(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.JSON)
	c, fc := dialFake(t, fs, nil, nil)
	go func() {
		cmd := fc.expect(codec.CmdHistory, "c")
		if !cmd.HasOffset || cmd.Offset != 3 || string(cmd.Epoch) != "e" || cmd.Limit != 2 || !cmd.Reverse {
			t.Errorf("history command %+v", cmd)
		}
		fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdHistory, Epoch: "e",
			Publications: []codec.HistoryPublication{{Offset: 5, Data: []byte(`{"a":1}`)}, {Offset: 4, Data: []byte{0, 1}}}})
		cmd = fc.expect(codec.CmdPresence, "c")
		fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdPresence, Clients: []codec.ClientInfo{{Client: "x", User: "u"}}})
		cmd = fc.expect(codec.CmdPresenceStats, "c")
		fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdPresenceStats, NumClients: 3, NumUsers: 2})
	}()
	ctx := context.Background()
	h, err := c.History(ctx, "c", HistoryOptions{Since: 3, Epoch: "e", Limit: 2, Reverse: true})
	if err != nil || h.Epoch != "e" || len(h.Publications) != 2 || string(h.Publications[0].Data) != `{"a":1}` ||
		string(h.Publications[1].Data) != "\x00\x01" || h.Publications[1].Offset != 4 {
		t.Fatalf("History: %+v, %v", h, err)
	}
	m, err := c.Presence(ctx, "c")
	if err != nil || !reflect.DeepEqual(m, []Member{{Client: "x", User: "u"}}) {
		t.Fatalf("Presence: %v, %v", m, err)
	}
	cl, us, err := c.PresenceStats(ctx, "c")
	if err != nil || cl != 3 || us != 2 {
		t.Fatalf("PresenceStats: %d %d %v", cl, us, err)
	}
}

// The token source is asked before every handshake, and again when the
// server pushes "refresh" — answered on the same connection.
func TestTokenSource(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	var n atomic.Int32
	var fail atomic.Bool
	source := func(context.Context) (string, error) {
		if fail.Load() {
			return "", errors.New("identity provider down")
		}
		return fmt.Sprint("t", n.Add(1)), nil
	}
	rec := newRecorder()
	c, fc := dialFake(t, fs, rec, func(o *Options) { o.TokenSource = source })
	fc.send(codec.AppendRefresh(nil, codec.Msgpack))
	cmd := fc.cmd()
	if cmd.Cmd != codec.CmdRefresh || string(cmd.Token) != "t2" {
		t.Fatalf("got %v %q, want refresh t2", cmd.Cmd, cmd.Token)
	}
	fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdRefresh})
	fc.drop() // a reconnect takes a fresh token
	fc = fs.accept()
	if got := fs.authHeaders(); !reflect.DeepEqual(got, []string{"Bearer t1", "Bearer t3"}) {
		t.Fatalf("handshake tokens %v", got)
	}
	// A failing source on refresh stops the client with its error.
	fail.Store(true)
	fc.send(codec.AppendRefresh(nil, codec.Msgpack))
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not stop")
	}
	if err := c.Err(); !errors.Is(err, ErrTokenSource) || !strings.Contains(err.Error(), "identity provider down") {
		t.Fatalf("Err() = %v", err)
	}
	fs.noConnectionFor(300 * time.Millisecond)
	if len(fs.attemptTimes()) != 2 {
		t.Fatalf("%d handshakes, want 2", len(fs.attemptTimes()))
	}
}

// A token source that fails before a reconnect stops the client too.
func TestTokenSourceFailsOnReconnect(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	var calls atomic.Int32
	c, fc := dialFake(t, fs, nil, func(o *Options) {
		o.TokenSource = func(context.Context) (string, error) {
			if calls.Add(1) > 1 {
				return "", errors.New("expired refresh token")
			}
			return "t", nil
		}
	})
	fc.closeWith(4004, "token expired")
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ErrTokenSource) || !strings.Contains(err.Error(), "expired refresh token") {
		t.Fatalf("Err() = %v", err)
	}
	fs.noConnectionFor(500 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Fatalf("token source called %d times, want 2", n)
	}
}

// A handler that falls behind costs a reconnect, not memory and not a
// publication: the client drops the connection when its queue is full and
// resumes from the last publication it queued, as often as it takes.
func TestSlowHandlerResumes(t *testing.T) {
	checkLeaks(t)
	const n = 30
	fs := newFakeServer(t, codec.Msgpack)
	release := make(chan struct{})
	var mu sync.Mutex
	var got []uint64
	handler := func(ev Event) {
		if p, ok := ev.(Publication); ok {
			<-release
			mu.Lock()
			got = append(got, p.Offset)
			mu.Unlock()
		}
	}
	c, fc := dialFake(t, fs, nil, func(o *Options) { o.QueueSize = 8 })
	ch := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(context.Background(), "c", handler)
		ch <- err
	}()
	cmd := fc.expect(codec.CmdSubscribe, "c")
	fc.subscribed(cmd, 0, "e", false, "")
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	fc.mayFail = true
	for off := uint64(1); off <= n; off++ {
		fc.message("c", off, "e", "x")
	}
	if err := fc.closed(); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("the client closed with %v, want 1000 (queue full)", err)
	}
	fc.end()
	close(release)
	// The server side of every resume: replay from the position asked.
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	reconnects := 0
	deadline := time.Now().Add(10 * time.Second)
	for delivered() < n {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d", delivered(), n)
		}
		select {
		case fc = <-fs.conns:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		reconnects++
		fc.mayFail = true
		cmd = fc.expect(codec.CmdSubscribe, "c")
		if !cmd.HasOffset || cmd.Offset >= n {
			t.Fatalf("resumed at %d (%v)", cmd.Offset, cmd.HasOffset)
		}
		fc.subscribed(cmd, n, "e", true, "")
		for off := cmd.Offset + 1; off <= n; off++ {
			fc.message("c", off, "e", "x")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, off := range got {
		if off != uint64(i+1) {
			t.Fatalf("delivered %v", got)
		}
	}
	t.Logf("%d publications through a queue of 8 took %d resumes", n, reconnects)
}

// A server that stops answering pings is declared dead and left.
func TestPingTimeout(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	fs.deaf = true // it never reads, so it never answers the ping
	rec := newRecorder()
	dialFake(t, fs, rec, func(o *Options) { o.PingInterval, o.PongTimeout = 50*time.Millisecond, 100*time.Millisecond })
	st := rec.waitState(t, StateDisconnected, 1)
	if !strings.Contains(fmt.Sprint(st.Err), "no pong") {
		t.Fatalf("disconnected for %v, want a ping timeout", st.Err)
	}
	fs.accept()
}

// Unsubscribe ends the handler's events; Close stops everything and
// leaves no goroutine behind.
func TestUnsubscribeAndClose(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	rec := newRecorder()
	c, fc := dialFake(t, fs, rec, nil)
	sub := subscribeFake(t, c, fc, "c", 0, "e", rec)
	fc.message("c", 1, "e", "x")
	rec.waitFor(t, "one", func(evs []Event, _ []State) bool { return countPubs(evs) == 1 })
	done := make(chan error, 1)
	go func() { done <- sub.Unsubscribe(context.Background()) }()
	cmd := fc.expect(codec.CmdUnsubscribe, "c")
	fc.reply(codec.Reply{ID: cmd.ID, Cmd: codec.CmdUnsubscribe})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fc.message("c", 2, "e", "late")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", c.Err())
	}
	if _, err := c.Publish(context.Background(), "c", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if n := countPubs(rec.waitEvents(t, 2)); n != 1 {
		t.Fatalf("%d publications delivered, want 1", n)
	}
}

// Subscribing twice to a channel, or to a bad channel name, fails at once.
func TestSubscribeErrors(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	rec := newRecorder()
	c, fc := dialFake(t, fs, rec, nil)
	subscribeFake(t, c, fc, "c", 0, "e", rec)
	if _, err := c.Subscribe(context.Background(), "c", rec.handle); !errors.Is(err, ErrAlreadySubscribed) {
		t.Fatalf("second subscribe: %v", err)
	}
	var se *ServerError
	if _, err := c.Subscribe(context.Background(), "bad name", rec.handle); !errors.As(err, &se) || se.Code != codec.CodeBadChannel {
		t.Fatalf("bad name: %v", err)
	}
	// A refusal by the server is returned and leaves no subscription.
	ch := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(context.Background(), "secret", rec.handle)
		ch <- err
	}()
	cmd := fc.expect(codec.CmdSubscribe, "secret")
	fc.replyErr(cmd.ID, codec.CodePermission)
	if err := <-ch; !errors.As(err, &se) || se.Code != codec.CodePermission {
		t.Fatalf("refused subscribe: %v", err)
	}
	// A resubscription the server refuses ends with an Unsubscribed event.
	fc.drop()
	fc = fs.accept()
	cmd = fc.expect(codec.CmdSubscribe, "c")
	fc.replyErr(cmd.ID, codec.CodePermission)
	evs := rec.waitEvents(t, 2)
	if u, ok := evs[1].(Unsubscribed); !ok || !errors.As(u.Err, &se) || se.Code != codec.CodePermission {
		t.Fatalf("event %#v, want Unsubscribed with 108", evs[1])
	}
}

// A frame that is not the protocol ends the client: reconnecting would
// not fix the server.
func TestProtocolViolation(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	c, fc := dialFake(t, fs, nil, nil)
	fc.send([]byte{0x91, 0x01})
	if err := fc.closed(); websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("client closed with %v, want 1007", err)
	}
	fc.end()
	<-c.Done()
	if !errors.Is(c.Err(), ErrProtocol) {
		t.Fatalf("Err() = %v", c.Err())
	}
}

// A JSON client refuses a server that does not select its subprotocol.
func TestSubprotocolMismatch(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.JSON)
	fs.noProtoOK = true
	go func() {
		if fc := fs.accept(); fc != nil {
			fc.closed()
			fc.end()
		}
	}()
	if _, err := Dial(context.Background(), fs.url(), Options{Encoding: codec.JSON}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Dial: %v, want ErrProtocol", err)
	}
}

// A subscription that had no epoch yet (the channel's history began after
// the subscribe) adopts the first one it sees: nothing was lost.
func TestFirstEpochIsAdopted(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	rec := newRecorder()
	c, fc := dialFake(t, fs, rec, nil)
	subscribeFake(t, c, fc, "c", 0, "", rec)
	fc.message("c", 1, "e1", "a")
	fc.message("c", 1, "e1", "a again")
	fc.message("c", 2, "e1", "b")
	rec.waitFor(t, "b", func(evs []Event, _ []State) bool { return countPubs(evs) == 2 })
	evs := rec.waitEvents(t, 3)
	if len(evs) != 3 || !reflect.DeepEqual(pubs(evs), []string{"e1/1:a", "e1/2:b"}) {
		t.Fatalf("events %#v", evs)
	}
}

// The server's unsubscribe push ends the subscription for good: an event,
// nothing more delivered, no resubscription after a reconnect, and the
// channel can be subscribed again.
// TestServerUnsubscribeQueued: what arrived before the server ended a
// subscription is delivered, in order, before Unsubscribed, however far
// the handlers lag behind the reader. (They used to be dropped: a
// subscription ended by the server counted as unsubscribed by the
// application.) The application's own Unsubscribe, even after the
// server's, silences what is still queued, Unsubscribed included.
func TestServerUnsubscribeQueued(t *testing.T) {
	for _, tc := range []struct {
		name            string
		appUnsubscribes bool
		want            []string
	}{
		{"delivered", false, []string{"pub one", "pub two", "unsubscribed c", "subscribed d"}},
		{"silenced by Unsubscribe", true, []string{"pub one", "subscribed d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			fs := newFakeServer(t, codec.Msgpack)
			rec := newRecorder()
			held, release := holdAt(rec, "one")
			c, fc := dialFake(t, fs, rec, nil)
			sub := subscribeFake(t, c, fc, "c", 0, "e", rec)
			rec.waitEvents(t, 1)
			fc.message("c", 1, "e", "one")
			<-held // the handlers are stuck on "one"
			fc.message("c", 2, "e", "two")
			fc.send(codec.AppendUnsubscribe(nil, codec.Msgpack, "c"))
			fc.message("c", 3, "e", "late")
			// The reader has taken the push once a command on another
			// channel is answered after it: frames are read in order.
			subscribeFake(t, c, fc, "d", 0, "e", rec)
			if tc.appUnsubscribes {
				if err := sub.Unsubscribe(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			close(release)
			waitLastSubscribed(t, rec, "d") // queued after everything of c's
			if got := describeEvents(rec.waitEvents(t, 1)[1:]); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("events %q, want %q", got, tc.want)
			}
		})
	}
}

// TestServerUnsubscribeWithAFullQueue: the server's unsubscribe push is
// applied even when the event queue has no room for a publication: it
// used to end the connection like a publication would, so the reconnect
// renewed the subscription the server had ended, and the application
// never heard of it.
func TestServerUnsubscribeWithAFullQueue(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	rec := newRecorder()
	held, release := holdAt(rec, "p1")
	c, fc := dialFake(t, fs, rec, func(o *Options) { o.QueueSize = 4 })
	subscribeFake(t, c, fc, "c", 0, "e", rec)
	rec.waitEvents(t, 1)
	fc.message("c", 1, "e", "p1")
	<-held
	for i := 2; i <= 4; i++ { // three queued: no room for one more publication
		fc.message("c", uint64(i), "e", fmt.Sprint("p", i))
	}
	fc.send(codec.AppendUnsubscribe(nil, codec.Msgpack, "c"))
	subscribeFake(t, c, fc, "d", 0, "e", rec) // the same connection still serves
	close(release)
	waitLastSubscribed(t, rec, "d")
	got := describeEvents(rec.waitEvents(t, 1)[1:])
	if want := []string{"pub p1", "pub p2", "pub p3", "pub p4", "unsubscribed c", "subscribed d"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// holdAt makes rec's handler wait, on the publication carrying data, until
// release is closed; held is closed once it waits there.
func holdAt(rec *recorder, data string) (held, release chan struct{}) {
	held, release = make(chan struct{}), make(chan struct{})
	rec.before = func(ev Event) {
		if p, ok := ev.(Publication); ok && string(p.Data) == data {
			close(held)
			<-release
		}
	}
	return held, release
}

// describeEvents names publications (by data), Unsubscribed and Subscribed
// events, in order.
func describeEvents(evs []Event) []string {
	var got []string
	for _, ev := range evs {
		switch e := ev.(type) {
		case Publication:
			got = append(got, "pub "+string(e.Data))
		case Unsubscribed:
			got = append(got, "unsubscribed "+e.Channel)
		case Subscribed:
			got = append(got, "subscribed "+e.Channel)
		}
	}
	return got
}

// waitLastSubscribed waits until the last event is ch's Subscribed: what
// was queued before it has been handled.
func waitLastSubscribed(t *testing.T, rec *recorder, ch string) {
	t.Helper()
	rec.waitFor(t, "subscribed "+ch, func(evs []Event, _ []State) bool {
		if len(evs) == 0 {
			return false
		}
		s, ok := evs[len(evs)-1].(Subscribed)
		return ok && s.Channel == ch
	})
}

func TestServerUnsubscribe(t *testing.T) {
	checkLeaks(t)
	fs := newFakeServer(t, codec.Msgpack)
	rec := newRecorder()
	c, fc := dialFake(t, fs, rec, nil)
	subscribeFake(t, c, fc, "c", 0, "e", rec)
	subscribeFake(t, c, fc, "d", 0, "e", rec)
	fc.send(codec.AppendUnsubscribe(nil, codec.Msgpack, "c"))
	fc.message("c", 1, "e", "late")
	evs := rec.waitEvents(t, 3)
	if u, ok := evs[2].(Unsubscribed); !ok || u.Channel != "c" || !errors.Is(u.Err, ErrServerUnsubscribed) {
		t.Fatalf("event %#v, want Unsubscribed(c) by the server", evs[2])
	}
	fc.drop()
	fc = fs.accept()
	fc.expect(codec.CmdSubscribe, "d") // c is not resubscribed
	subscribeFake(t, c, fc, "c", 1, "e", rec)
	if n := countPubs(rec.waitEvents(t, 4)); n != 0 {
		t.Fatalf("%d publications delivered after the unsubscribe push", n)
	}
}
