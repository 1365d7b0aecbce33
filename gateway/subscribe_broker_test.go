package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/memory"
)

// failingPositions is a broker whose next Position calls fail (a Redis
// round trip that timed out).
type failingPositions struct {
	broker.Broker
	fail atomic.Int32
}

func (b *failingPositions) Position(ch string, done func(broker.Position, error)) {
	if b.fail.Add(-1) >= 0 {
		done(broker.Position{}, errors.New("broker down"))
		return
	}
	b.Broker.Position(ch, done)
}

// TestSubscribeFailureIsUndone: a subscribe the broker fails is answered
// 111, which codec/README.md defines as "nothing was done": the server has
// undone it, so the same subscribe sent again succeeds (not 104, already
// subscribed) and the channel's publications then arrive once.
func TestSubscribeFailureIsUndone(t *testing.T) {
	b := &failingPositions{Broker: memory.New("n1")}
	srv := startServer(t, func(c *gateway.Config) { c.Broker = b })
	addr := srv.Addr().String()
	sub := &resumeClient{dialWS(t, addr, "/ws"), t}
	b.fail.Store(1)
	sub.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "c"})
	if m := sub.frameMap(); fmt.Sprint(m["id"]) != "1" || !errorCode(m, 111) {
		t.Fatalf("subscribe while the broker fails: %v, want error 111", m)
	}
	sub.cmd(map[string]any{"id": 2, "cmd": "subscribe", "channel": "c"})
	if m := sub.frameMap(); fmt.Sprint(m["id"]) != "2" || m["error"] != nil {
		t.Fatalf("the same subscribe again: %v, want it to succeed", m)
	}
	pub := &resumeClient{dialWS(t, addr, "/ws"), t}
	pub.cmd(map[string]any{"id": 1, "cmd": "publish", "channel": "c", "data": []byte("once")})
	if m := pub.frameMap(); m["error"] != nil {
		t.Fatalf("publish: %v", m)
	}
	if m := sub.frameMap(); m["type"] != "message" || fmt.Sprint(m["data"]) != fmt.Sprint([]byte("once")) {
		t.Fatalf("subscriber received %v", m)
	}
	sub.expectNothing(200 * time.Millisecond) // once: no second subscription
}

func errorCode(m map[string]any, code int) bool {
	e, ok := m["error"].(map[string]any)
	return ok && fmt.Sprint(e["code"]) == fmt.Sprint(code)
}

// slowPositions answers Position with the position read at once, but only
// when gate is closed (a Redis reply that is slow to come back).
type slowPositions struct {
	broker.Broker
	gate  chan struct{}
	asked atomic.Int32 // positions read
	fail  atomic.Bool  // answer with an error once gate is closed
}

func (b *slowPositions) Position(ch string, done func(broker.Position, error)) {
	b.Broker.Position(ch, func(pos broker.Position, err error) {
		b.asked.Add(1) // read: a publication from now on is above pos
		go func() {
			<-b.gate
			if b.fail.Load() {
				pos, err = broker.Position{}, errors.New("not confirmed")
			}
			done(pos, err)
		}()
	})
}

// TestSubscribeReplyBeforeLaterPublications: a publication made while a
// fresh subscribe waits for the broker's position reaches the subscriber
// after the reply, not before it — a client ignores what comes before
// the reply, so one after the position it names would be lost unseen.
func TestSubscribeReplyBeforeLaterPublications(t *testing.T) {
	b := &slowPositions{Broker: memory.New("n1"), gate: make(chan struct{})}
	srv := startServer(t, func(c *gateway.Config) { c.Broker = b })
	addr := srv.Addr().String()
	sub := &resumeClient{dialWS(t, addr, "/ws"), t}
	sub.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "c"})
	// The position is read (at 0) before the publication: the server
	// handles the subscribe on its own time.
	waitUntil(t, 5*time.Second, func() bool { return b.asked.Load() == 1 })
	pub := &resumeClient{dialWS(t, addr, "/ws"), t}
	pub.cmd(map[string]any{"id": 1, "cmd": "publish", "channel": "c", "data": []byte("early")})
	if m := pub.frameMap(); m["error"] != nil || fmt.Sprint(m["offset"]) != "1" {
		t.Fatalf("publish: %v", m)
	}
	time.Sleep(200 * time.Millisecond) // the publication reaches the subscriber's connection
	close(b.gate)
	if m := sub.frameMap(); m["type"] != "reply" || fmt.Sprint(m["id"]) != "1" || fmt.Sprint(m["offset"]) != "0" {
		t.Fatalf("first frame %v, want the subscribe reply at offset 0", m)
	}
	if m := sub.frameMap(); m["type"] != "message" || fmt.Sprint(m["offset"]) != "1" {
		t.Fatalf("then %v, want the publication at offset 1", m)
	}
}

// TestServerUnsubscribeDuringSubscribe: the server API ends a
// subscription whose subscribe still waits for the broker. The subscribe is
// answered at once with 108, final, and no push follows: a success then an
// unsubscribe push would not be heard (a client ignores pushes about a
// subscription it has not been confirmed), and 111 would be sent again,
// undoing the backend's decision. The broker's answer, when it comes, sends
// nothing; a subscribe sent after the 108, even before that answer, is a
// new subscription that delivers. A subscribe without an id gets the push
// instead, which names the channel.
func TestServerUnsubscribeDuringSubscribe(t *testing.T) {
	for _, tc := range []struct {
		name         string
		id           int
		resume, fail bool
	}{
		{"fresh", 1, false, false}, {"resume", 1, true, false}, {"broker fails", 1, false, true}, {"no id", 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &slowPositions{Broker: memory.New("n1"), gate: make(chan struct{})}
			b.fail.Store(tc.fail)
			srv := startServer(t, func(c *gateway.Config) { c.Broker = b })
			addr := srv.Addr().String()
			sub := &resumeClient{dialWS(t, addr, "/ws"), t}
			cmd := map[string]any{"id": tc.id, "cmd": "subscribe", "channel": "c"}
			if tc.resume {
				cmd["offset"], cmd["epoch"] = 0, ""
			}
			sub.cmd(cmd)
			waitUntil(t, 5*time.Second, func() bool { return b.asked.Load() == 1 })
			if n, err := srv.APIBackend().Unsubscribe(context.Background(), "", "", "c"); err != nil || n != 1 {
				t.Fatalf("API unsubscribe: %d, %v", n, err)
			}
			m := sub.frameMap() // before the broker answers
			if tc.id == 0 {
				if m["type"] != "unsubscribe" || m["channel"] != "c" {
					t.Fatalf("the subscribe without an id: %v, want the unsubscribe push", m)
				}
			} else if fmt.Sprint(m["id"]) != "1" || !errorCode(m, 108) {
				t.Fatalf("the subscribe's answer: %v, want error 108", m)
			}
			if !tc.fail {
				// Subscribed again before the broker answers the first.
				sub.cmd(map[string]any{"id": 2, "cmd": "subscribe", "channel": "c"})
				waitUntil(t, 5*time.Second, func() bool { return b.asked.Load() == 2 })
			}
			close(b.gate)
			if tc.fail {
				sub.expectNothing(100 * time.Millisecond) // the failure sends nothing more
				b.fail.Store(false)
				sub.cmd(map[string]any{"id": 2, "cmd": "subscribe", "channel": "c"})
			}
			if m := sub.frameMap(); fmt.Sprint(m["id"]) != "2" || m["error"] != nil {
				t.Fatalf("subscribing again: %v", m)
			}
			pub := &resumeClient{dialWS(t, addr, "/ws"), t}
			pub.cmd(map[string]any{"id": 1, "cmd": "publish", "channel": "c", "data": []byte("after")})
			if m := pub.frameMap(); m["error"] != nil {
				t.Fatalf("publish: %v", m)
			}
			if m := sub.frameMap(); m["type"] != "message" || fmt.Sprint(m["data"]) != fmt.Sprint([]byte("after")) {
				t.Fatalf("the new subscription received %v", m)
			}
			sub.expectNothing(200 * time.Millisecond) // once, and nothing of the first
		})
	}
}

// refusingPublishes is a broker whose Publish fails with err.
type refusingPublishes struct {
	broker.Broker
	err error
}

func (b *refusingPublishes) Publish(_ string, _ []byte, _ broker.PublishOptions, done func(broker.PublishResult, error)) {
	done(broker.PublishResult{}, b.err)
}

// TestPublishErrorCodes: each way a broker can fail a publish reaches the
// client as the code codec/README §6 gives it, which tells the client
// whether it was published: 107 and 111 not (retry), 113 maybe, 114 the
// key was used for other data.
func TestPublishErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{broker.ErrOverloaded, 107},
		{broker.ErrUnavailable, 111},
		{errors.New("redis: some error"), 111},
		{broker.ErrOutcomeUnknown, 113},
		{broker.ErrKeyReused, 114},
	} {
		b := &refusingPublishes{Broker: memory.New("n1"), err: fmt.Errorf("publish: %w", tc.err)}
		srv := startServer(t, func(c *gateway.Config) { c.Broker = b })
		c := &resumeClient{dialWS(t, srv.Addr().String(), "/ws"), t}
		c.cmd(map[string]any{"id": 1, "cmd": "publish", "channel": "c", "data": []byte("x"), "idempotency_key": "k"})
		if m := c.frameMap(); fmt.Sprint(m["id"]) != "1" || !errorCode(m, tc.code) {
			t.Errorf("broker error %q: %v, want error %d", tc.err, m, tc.code)
		}
	}
}
