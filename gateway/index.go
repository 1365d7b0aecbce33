package gateway

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// connIndex is the server's table of connections: a slab indexed by fd
// (registration, lookup and the shutdown sweep cost no map and no
// per-connection allocation) and an index by user, so that the API's
// disconnect / unsubscribe calls cost O(matches), not O(RLIMIT_NOFILE). A
// client id names its connection's fd (newClientID), so a lookup by client
// id needs no index at all; anonymous connections are in no map.
type connIndex struct {
	slab []atomic.Pointer[conn]

	mu     sync.Mutex
	byUser map[string][]*conn // open /ws connections with a user id
}

func newConnIndex(size int) *connIndex {
	return &connIndex{slab: make([]atomic.Pointer[conn], size), byUser: map[string][]*conn{}}
}

// fits reports whether fd has a place in the slab.
func (x *connIndex) fits(fd int) bool { return fd >= 0 && fd < len(x.slab) }

// put registers c under its fd.
func (x *connIndex) put(fd int, c *conn) { x.slab[fd].Store(c) }

// addUser indexes an upgraded connection by its user ("": not indexed).
func (x *connIndex) addUser(c *conn, user string) {
	if user == "" {
		return
	}
	x.mu.Lock()
	x.byUser[user] = append(x.byUser[user], c)
	x.mu.Unlock()
}

// remove forgets a closing connection (before its fd number can be
// reused). Called under c.mu: the lock order is conn.mu, then x.mu.
func (x *connIndex) remove(fd int, c *conn) {
	x.slab[fd].CompareAndSwap(c, nil)
	if c.sess == nil || c.sess.userID() == "" {
		return
	}
	user := c.sess.userID()
	x.mu.Lock()
	defer x.mu.Unlock()
	cs := slices.DeleteFunc(x.byUser[user], func(o *conn) bool { return o == c })
	if len(cs) == 0 {
		delete(x.byUser, user)
		return
	}
	x.byUser[user] = cs
}

// all lists the registered connections (any state).
func (x *connIndex) all() []*conn {
	var out []*conn
	for fd := range x.slab {
		if c := x.slab[fd].Load(); c != nil {
			out = append(out, c)
		}
	}
	return out
}

// candidates lists the connections that may match user and client
// (either may be "": any): by user the index, by client id alone one slab
// lookup, by neither every connection. The caller checks each (match).
func (x *connIndex) candidates(user, client string) []*conn {
	switch {
	case user != "":
		x.mu.Lock()
		defer x.mu.Unlock()
		return slices.Clone(x.byUser[user])
	case client != "":
		fd, ok := clientFd(client)
		if !ok || !x.fits(fd) {
			return nil
		}
		if c := x.slab[fd].Load(); c != nil {
			return []*conn{c}
		}
		return nil
	}
	return x.all()
}

// match reports whether c is an open /ws connection with client id client
// ("": any). Its user was matched by candidates.
func match(c *conn, client string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sess // set under mu at the upgrade; its client id never changes
	return s != nil && c.state == stateOpen &&
		(client == "" || clientID(c.srv.cfg.NodeID, s.seq, int(s.fd)) == client)
}

// lookup lists the open /ws connections of user and client ("": any).
func (x *connIndex) lookup(user, client string) []*conn {
	cs := x.candidates(user, client)
	out := cs[:0]
	for _, c := range cs {
		if match(c, client) {
			out = append(out, c)
		}
	}
	return out
}

// clientID names a connection uniquely across instances: node id, a
// counter, and the connection's fd, so the server API finds it without an
// index (clientFd). The fd alone is not unique (fds are reused): the
// counter is.
func clientID(node string, seq uint64, fd int) string {
	return node + "-" + strconv.FormatUint(seq, 36) + "-" + strconv.FormatUint(uint64(fd), 36)
}

// clientFd reads the fd back from a client id made by clientID.
func clientFd(id string) (int, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	fd, err := strconv.ParseUint(id[i+1:], 36, 31)
	return int(fd), err == nil
}
