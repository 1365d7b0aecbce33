package gateway_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/auth"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

var nodeSeq atomic.Int64

// joinLeaveConfig gives c a namespace "room" with presence and join/leave
// pushes on, and authentication so connections have user ids; the default
// namespace keeps join/leave off.
func joinLeaveConfig(t *testing.T, c *gateway.Config) {
	t.Helper()
	def := c.DefaultNamespace()
	room := def
	room.Presence, room.JoinLeave = true, true
	ns, err := gateway.NewNamespaces(def, map[string]gateway.Namespace{"room": room})
	if err != nil {
		t.Fatal(err)
	}
	c.Namespaces = ns
	// Client ids are NodeID-counter: instances need distinct node ids, or
	// a client on one could be taken for a namesake on the other.
	c.NodeID = fmt.Sprint("jl-", nodeSeq.Add(1))
	a, err := auth.New(auth.Config{HMACSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	c.Auth = a
}

// dialUser is dialProto for a connection authenticated as user.
func dialUser(t *testing.T, addr, user string, json bool) *protoClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	proto := "wsgate.v1.msgpack"
	if json {
		proto = "wsgate.v1.json"
	}
	c, _, err := cws.Dial(ctx, "ws://"+addr+"/ws?token="+token(t, user, time.Hour, nil),
		&cws.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &protoClient{t: t, c: c, json: json}
}

// until reads frames until one has all of want's fields, and returns it
// with the frames read before it.
func (p *protoClient) until(want map[string]any) (map[string]any, []map[string]any) {
	p.t.Helper()
	var before []map[string]any
	for {
		m := p.recv()
		match := true
		for k, v := range want {
			if fmt.Sprint(m[k]) != fmt.Sprint(v) {
				match = false
				break
			}
		}
		if match {
			return m, before
		}
		before = append(before, m)
	}
}

// noPresenceEvents fails if frames hold a join or leave push.
func noPresenceEvents(t *testing.T, what string, frames []map[string]any) {
	t.Helper()
	for _, m := range frames {
		if m["type"] == "join" || m["type"] == "leave" {
			t.Fatalf("%s: unexpected %v", what, m)
		}
	}
}

// jlSubscribe subscribes p to channel and waits for the reply.
func jlSubscribe(p *protoClient, id int, channel string) {
	p.t.Helper()
	p.send(map[string]any{"id": id, "cmd": "subscribe", "channel": channel})
	r, _ := p.until(map[string]any{"type": "reply", "id": id})
	if r["error"] != nil {
		p.t.Fatalf("subscribe %s: %v", channel, r)
	}
}

// publishSeen publishes data on channel from p, which is subscribed to it,
// and returns the frames p got before its own message came back (the
// reply among them or after it).
func publishSeen(p *protoClient, id int, channel, data string) (map[string]any, []map[string]any) {
	p.t.Helper()
	p.send(map[string]any{"id": id, "cmd": "publish", "channel": channel, "data": []byte(data)})
	return p.until(map[string]any{"type": "message", "channel": channel})
}

// TestJoinLeavePushes (memory broker): in a namespace with join_leave, a
// subscriber is told when another connection subscribes (join), then
// unsubscribes or disconnects (leave), with its client and user id, in
// either encoding; the connection is not told of its own; a namespace
// without join_leave sends none; events take no offset.
func TestJoinLeavePushes(t *testing.T) {
	srv := startServer(t, func(c *gateway.Config) { joinLeaveConfig(t, c) })
	addr := srv.Addr().String()
	watch := dialUser(t, addr, "1", false)
	watchJSON := dialUser(t, addr, "1", true)
	jlSubscribe(watch, 1, "room:a")
	jlSubscribe(watch, 2, "plain")
	jlSubscribe(watchJSON, 1, "room:a")

	// watchJSON's join reaches watch (not watchJSON itself).
	watch.until(map[string]any{"type": "join", "channel": "room:a", "user": "1"})

	// Another user subscribes: both watchers see the join.
	other := dialUser(t, addr, "2", false)
	jlSubscribe(other, 1, "room:a")
	join, before := watch.until(map[string]any{"type": "join"})
	noPresenceEvents(t, "before the join", before)
	client := fmt.Sprint(join["client"])
	if join["channel"] != "room:a" || join["user"] != "2" || client == "" || len(join) != 4 {
		t.Fatalf("join push %v", join)
	}
	watchJSON.until(map[string]any{"type": "join", "channel": "room:a", "client": client, "user": "2"})
	if got := srv.Hub().Stats().Gaps.Load() + srv.Hub().Stats().Duplicates.Load(); got != 0 {
		t.Fatalf("events disturbed offsets: %d gaps + duplicates", got)
	}

	// The joiner is not told of its own join: the first publication after
	// it is the next thing it sees. Offsets are untouched by events.
	m, before := publishSeen(watch, 3, "room:a", "hello")
	noPresenceEvents(t, "watcher after the join", before)
	if fmt.Sprint(m["offset"]) != "1" {
		t.Fatalf("first publication after join has offset %v, want 1", m["offset"])
	}
	_, before = other.until(map[string]any{"type": "message", "channel": "room:a"})
	noPresenceEvents(t, "joiner", before)

	// Subscribing to a channel without join_leave tells nobody.
	jlSubscribe(other, 2, "plain")
	_, before = publishSeen(watch, 4, "plain", "x")
	noPresenceEvents(t, "namespace without join_leave", before)

	// Unsubscribe: leave.
	other.send(map[string]any{"id": 3, "cmd": "unsubscribe", "channel": "room:a"})
	other.until(map[string]any{"type": "reply", "id": 3})
	leave, before := watch.until(map[string]any{"type": "leave"})
	noPresenceEvents(t, "before the leave", before)
	if leave["channel"] != "room:a" || leave["client"] != client || leave["user"] != "2" {
		t.Fatalf("leave push %v, want client %s user 2", leave, client)
	}
	watchJSON.until(map[string]any{"type": "leave", "channel": "room:a", "client": client, "user": "2"})

	// Subscribe again, then disconnect: join, then leave.
	jlSubscribe(other, 4, "room:a")
	watch.until(map[string]any{"type": "join", "client": client})
	other.c.CloseNow()
	watch.until(map[string]any{"type": "leave", "channel": "room:a", "client": client, "user": "2"})
	watchJSON.until(map[string]any{"type": "join", "client": client})
	watchJSON.until(map[string]any{"type": "leave", "client": client})

	// A disconnect from a channel without join_leave tells nobody.
	third := dialUser(t, addr, "3", false)
	jlSubscribe(third, 1, "plain")
	third.c.CloseNow()
	waitUntil(t, 5*time.Second, func() bool { return srv.Hub().Subscribers("plain") == 1 })
	m, before = publishSeen(watch, 5, "room:a", "bye")
	noPresenceEvents(t, "after plain disconnect", before)
	if fmt.Sprint(m["offset"]) != "2" {
		t.Fatalf("second publication has offset %v, want 2", m["offset"])
	}
}

// TestJoinLeaveAcrossInstances (Redis): two gateways on one Redis; a
// subscriber on A sees the join and leave of a client on B.
func TestJoinLeaveAcrossInstances(t *testing.T) {
	rs := redistest.StartStandalone(t)
	a := startRedisGateway(t, rs.URL(), func(c *gateway.Config) { joinLeaveConfig(t, c) })
	b := startRedisGateway(t, rs.URL(), func(c *gateway.Config) { joinLeaveConfig(t, c) })
	watch := dialUser(t, a.Addr().String(), "alice", false)
	watchJSON := dialUser(t, a.Addr().String(), "carol", true)
	jlSubscribe(watch, 1, "room:x")
	jlSubscribe(watchJSON, 1, "room:x")
	// carol's join reaches alice (same instance, through Redis).
	watch.until(map[string]any{"type": "join", "channel": "room:x", "user": "carol"})

	remote := dialUser(t, b.Addr().String(), "bob", false)
	jlSubscribe(remote, 1, "room:x")
	join, _ := watch.until(map[string]any{"type": "join", "channel": "room:x", "user": "bob"})
	client := fmt.Sprint(join["client"])
	watchJSON.until(map[string]any{"type": "join", "channel": "room:x", "client": client, "user": "bob"})

	// A publication from B still starts at offset 1: the events took none.
	remote.send(map[string]any{"id": 2, "cmd": "publish", "channel": "room:x", "data": []byte("hi")})
	m, before := watch.until(map[string]any{"type": "message", "channel": "room:x"})
	noPresenceEvents(t, "between join and message", before)
	if fmt.Sprint(m["offset"]) != "1" {
		t.Fatalf("offset %v, want 1", m["offset"])
	}

	remote.send(map[string]any{"id": 3, "cmd": "unsubscribe", "channel": "room:x"})
	watch.until(map[string]any{"type": "leave", "channel": "room:x", "client": client, "user": "bob"})
	jlSubscribe(remote, 4, "room:x")
	watch.until(map[string]any{"type": "join", "channel": "room:x", "client": client, "user": "bob"})
	remote.c.CloseNow()
	watch.until(map[string]any{"type": "leave", "channel": "room:x", "client": client, "user": "bob"})
	watchJSON.until(map[string]any{"type": "leave", "channel": "room:x", "client": client, "user": "bob"})
	for _, s := range []*gateway.Server{a, b} {
		if st := s.Hub().Stats(); st.Gaps.Load() != 0 || st.Duplicates.Load() != 0 {
			t.Fatalf("gaps %d duplicates %d", st.Gaps.Load(), st.Duplicates.Load())
		}
	}
}
