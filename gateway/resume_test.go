package gateway_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/wsgate/wsgate/gateway"
)

// resumeClient is a /ws client that keeps the offsets it received.
type resumeClient struct {
	*wsConn
	t *testing.T
}

func (c *resumeClient) cmd(m map[string]any) { c.send(binFrame(mp(c.t, m))) }

// frameMap reads the next message as a map.
func (c *resumeClient) frameMap() map[string]any {
	c.t.Helper()
	ev, err := c.next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(ev.payload, &m); err != nil {
		c.t.Fatalf("decode: %v", err)
	}
	return m
}

func toU(v any) uint64 {
	var n uint64
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

// TestResumeAcrossDisconnect (memory broker): a subscriber leaves, 500
// publications happen, it comes back with its last position while
// publishing goes on, and receives exactly the missed ones in order, then
// live ones, with no gap and no duplicate at the seam.
func TestResumeAcrossDisconnect(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.HistorySize = 1000 })
	testResume(t, srv.Addr().String(), srv.Addr().String())
}

// testResume runs the resume scenario: subscribe on addrA, resume on addrB.
func testResume(t *testing.T, addrA, addrB string) {
	sub := &resumeClient{dialWS(t, addrA, "/ws"), t}
	sub.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "feed"})
	reply := sub.frameMap()
	epoch := fmt.Sprint(reply["epoch"])

	pub := &resumeClient{dialWS(t, addrA, "/ws"), t}
	publishN := func(from, to int) {
		for i := from; i <= to; i++ {
			pub.cmd(map[string]any{"id": i, "cmd": "publish", "channel": "feed", "data": []byte(fmt.Sprint(i))})
			if m := pub.frameMap(); m["error"] != nil {
				t.Errorf("publish %d: %v", i, m)
			}
		}
	}
	publishN(1, 10)
	var last uint64
	for range 10 {
		last = toU(sub.frameMap()["offset"])
	}
	sub.conn.Close()

	publishN(11, 510) // 500 missed
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // publishing goes on during the resume
		defer wg.Done()
		publishN(511, 610)
	}()
	back := &resumeClient{dialWS(t, addrB, "/ws"), t}
	back.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "feed", "offset": last, "epoch": epoch})
	r := back.frameMap()
	if r["recovered"] != true {
		t.Fatalf("resume reply %v, want recovered", r)
	}
	want := last + 1
	for want <= 610 {
		m := back.frameMap()
		if got := toU(m["offset"]); got != want {
			t.Fatalf("got offset %d, want %d (gap or duplicate at the seam)", got, want)
		}
		want++
	}
	wg.Wait()
	back.expectNothing(200 * time.Millisecond)
}

// TestResumeFromUnknownEpoch: a position from another epoch is answered
// recovered=false with the reason, and live delivery goes on.
func TestResumeFromUnknownEpoch(t *testing.T) {
	srv := startServer(t, nil)
	c := &resumeClient{dialWS(t, srv.Addr().String(), "/ws"), t}
	c.cmd(map[string]any{"id": 1, "cmd": "subscribe", "channel": "x", "offset": 5, "epoch": "not-this-one"})
	r := c.frameMap()
	if r["recovered"] != false || r["reason"] != "epoch changed" {
		t.Fatalf("reply %v", r)
	}
}

// TestHistoryCommand pages through a channel's history.
func TestHistoryCommand(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { c.HistorySize = 5 })
	c := &resumeClient{dialWS(t, srv.Addr().String(), "/ws"), t}
	for i := 1; i <= 8; i++ {
		c.cmd(map[string]any{"id": i, "cmd": "publish", "channel": "h", "data": []byte(fmt.Sprint(i))})
		c.frameMap()
	}
	c.cmd(map[string]any{"id": 20, "cmd": "history", "channel": "h", "offset": 4, "limit": 2})
	r := c.frameMap()
	if got := fmt.Sprint(r["publications"]); got != "[map[data:[53] offset:5] map[data:[54] offset:6]]" {
		t.Fatalf("history since 4 limit 2: %v", r)
	}
	c.cmd(map[string]any{"id": 21, "cmd": "history", "channel": "h", "reverse": true, "limit": 1})
	if got := fmt.Sprint(c.frameMap()["publications"]); got != "[map[data:[56] offset:8]]" {
		t.Fatalf("newest first: %v", got)
	}
}
