package gateway

import (
	"slices"
	"testing"
)

// TestClientIDCarriesFd: the fd is in every client id and reads back, for
// any node name (even one with dashes) and any fd below the slab's size.
func TestClientIDCarriesFd(t *testing.T) {
	for _, tc := range []struct {
		node string
		seq  uint64
		fd   int
	}{
		{"n1", 1, 0}, {"node-abc-def", 1 << 40, 19_999}, {"x", 0, 1<<20 + 3}, {"a-b", 35, 36},
	} {
		id := clientID(tc.node, tc.seq, tc.fd)
		fd, ok := clientFd(id)
		if !ok || fd != tc.fd {
			t.Errorf("clientFd(%q) = %d, %v; want %d", id, fd, ok, tc.fd)
		}
	}
	if clientID("n", 1, 5) == clientID("n", 2, 5) {
		t.Error("two connections on one fd got the same client id")
	}
	for _, bad := range []string{"", "nodash", "n-1-", "n-1-zzzzzzzzzzzz"} {
		if _, ok := clientFd(bad); ok {
			t.Errorf("clientFd(%q) accepted a malformed id", bad)
		}
	}
}

// indexConn builds an open /ws connection on fd of user, registered in
// the server's index the way conn.open does it.
func indexConn(srv *Server, fd int, seq uint64, user string) *conn {
	c := &conn{srv: srv, state: stateOpen}
	c.sess = newSession(c, srv, 0, seq, fd, Identity{UserID: user})
	srv.index.put(fd, c)
	srv.index.addUser(c, user)
	return c
}

// TestIndexLookup: by client id, by user, by both and by neither the
// index finds exactly the open /ws connections that match, and forgets a
// closed one (by user too).
func TestIndexLookup(t *testing.T) {
	srv := testServer(t, nil)
	srv.index = newConnIndex(64)
	a := indexConn(srv, 3, 1, "alice")
	b := indexConn(srv, 4, 2, "alice")
	c := indexConn(srv, 5, 3, "bob")
	anon := indexConn(srv, 6, 4, "")
	echo := &conn{srv: srv, state: stateOpen} // no session: never matched
	srv.index.put(7, echo)

	same := func(got []*conn, want ...*conn) bool {
		return len(got) == len(want) && !slices.ContainsFunc(want, func(w *conn) bool { return !slices.Contains(got, w) })
	}
	cases := []struct {
		user, client string
		want         []*conn
	}{
		{"alice", "", []*conn{a, b}},
		{"bob", "", []*conn{c}},
		{"", a.sess.id(), []*conn{a}},
		{"", anon.sess.id(), []*conn{anon}},
		{"alice", b.sess.id(), []*conn{b}},
		{"bob", a.sess.id(), nil},                     // a's id, another user
		{"", clientID("n1", 99, 3), nil},              // a's fd, a stale seq
		{"", clientID("n1", 1, 1000), nil},            // outside the slab
		{"", "garbage", nil},                          // not a client id
		{"carol", "", nil},                            // unknown user
		{"", "", []*conn{a, b, c, anon}},              // every /ws connection
		{"alice", clientID("other-node", 1, 3), nil},  // another node's id
		{"", clientID("other-node", 1, 3), []*conn{}}, // same fd and seq, other node
	}
	for _, tc := range cases {
		if got := srv.index.lookup(tc.user, tc.client); !same(got, tc.want...) {
			t.Errorf("lookup(%q, %q) = %d conns, want %d", tc.user, tc.client, len(got), len(tc.want))
		}
	}

	a.state = stateClosing // not open: not matched, though still indexed
	if got := srv.index.lookup("alice", ""); !same(got, b) {
		t.Errorf("closing connection matched: %d conns", len(got))
	}
	srv.index.remove(3, a)
	srv.index.remove(5, c)
	if n := len(srv.index.byUser["alice"]); n != 1 {
		t.Errorf("alice has %d indexed connections after a close, want 1", n)
	}
	if _, ok := srv.index.byUser["bob"]; ok {
		t.Error("a user without connections stays in the index")
	}
	if srv.index.slab[3].Load() != nil {
		t.Error("a removed connection stays in the slab")
	}
}
