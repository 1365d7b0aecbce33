package gateway

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Admission: every bound on who may connect, in one place. admitNew runs
// for each accepted socket before it is registered; admitUpgrade when its
// upgrade request is read (the per-IP count of a connection from a
// trusted proxy, whose client only the request names); admitUser when its
// upgrade names a user; release when it closes.

// acceptBurstDivisor: the accept-rate bucket holds 1/acceptBurstDivisor
// of a second's worth of handshakes.
const acceptBurstDivisor = 10

// limits counts connections per client IP and per user, and paces
// handshakes.
type limits struct {
	cfg     *Config
	proxies trustedProxies // Config.TrustedProxies

	mu     sync.Mutex
	perIP  map[netip.Addr]int
	addrOf map[*conn]clientAddr // see clientAddr
	perUsr map[string]int

	// accept rate token bucket (accept path only: one goroutine at a time)
	acceptTokens float64
	acceptLast   time.Time
}

// clientAddr is a connection's client address as limits keeps it: while
// it is counted in perIP (MaxConnsPerIP set), and, for a connection
// from a trusted proxy, when X-Forwarded-For named it and debug logging
// was on at the upgrade (the log lines print it; an idle connection
// should not pay for a line that is never written).
type clientAddr struct {
	ip        netip.Addr
	forwarded bool // named by X-Forwarded-For: ip is not the TCP peer
	counted   bool // counted in perIP
}

// newLimits builds the limits of cfg, which Validate accepted.
func newLimits(cfg *Config) *limits {
	proxies, _ := parseTrustedProxies(cfg.TrustedProxies)
	return &limits{cfg: cfg, proxies: proxies, perIP: map[netip.Addr]int{}, addrOf: map[*conn]clientAddr{}, perUsr: map[string]int{}}
}

// refusal is how a fresh connection is turned away before its handshake:
// the HTTP answer and the label its log line and summary count it under.
type refusal struct {
	status int
	label  string
	resp   []byte
}

// admitNew decides whether the freshly accepted fd (to become c) may
// start a handshake: the cap on handshakes in flight, on open
// connections, the accept rate, then the per-IP count, which it takes for
// c when it admits. It counts refusals in m.
func (l *limits) admitNew(c *conn, fd int, m *Metrics, now time.Time) (refusal, bool) {
	switch {
	case m.HandshakesActive.Load() >= int64(l.cfg.MaxHandshakes):
		m.HandshakesBusy.Add(1)
		return refusal{503, refusedHandshakes, busyResponse}, false
	case l.cfg.MaxConns > 0 && m.ConnsOpen.Load() >= int64(l.cfg.MaxConns):
		m.ConnsRefused.Add(1)
		return refusal{503, refusedMaxConns, busyResponse}, false
	case !l.admitRate(now):
		m.ConnsRefused.Add(1)
		return refusal{503, refusedAcceptRate, busyResponse}, false
	case !l.admitIP(c, fd):
		m.ConnsRefused.Add(1)
		return refusal{429, refusedPerIP, tooManyFromIP}, false
	}
	return refusal{}, true
}

// admitRate paces new connections: false means answer 503. The bucket
// holds a tenth of a second's worth (at least one): a full second's worth
// let a whole second of handshakes through at once, which is the burst
// the rate is there to spread.
func (l *limits) admitRate(now time.Time) bool {
	rate := l.cfg.AcceptRate
	if rate <= 0 {
		return true
	}
	burst := max(rate/acceptBurstDivisor, 1)
	if l.acceptLast.IsZero() {
		l.acceptTokens = burst
	}
	l.acceptTokens = min(burst, l.acceptTokens+now.Sub(l.acceptLast).Seconds()*rate)
	l.acceptLast = now
	if l.acceptTokens < 1 {
		return false
	}
	l.acceptTokens--
	return true
}

// admitIP counts c against its peer address at accept; false means too
// many. A trusted proxy is not counted here: the client it speaks for is
// named by the upgrade request (admitUpgrade), so a direct flood is still
// refused before it costs a handshake, and a proxy's is not.
func (l *limits) admitIP(c *conn, fd int) bool {
	if l.cfg.MaxConnsPerIP <= 0 {
		return true
	}
	ip := peerIP(fd)
	if l.proxies.trusts(ip) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.countLocked(c, clientAddr{ip: ip})
}

// countLocked counts c against a.ip and keeps a for release; false (over
// MaxConnsPerIP) counts nothing.
func (l *limits) countLocked(c *conn, a clientAddr) bool {
	if l.perIP[a.ip] >= l.cfg.MaxConnsPerIP {
		return false
	}
	l.perIP[a.ip]++
	a.counted = true
	l.addrOf[c] = a
	return true
}

// admitUpgrade decides on c's upgrade request, before the handshake hook
// runs (conn.admitUpgrade). Behind a trusted proxy the client is the
// address fwd names (forwarded.go), or the proxy itself when the header is
// absent or ignored; that address is counted against MaxConnsPerIP (false:
// too many, 429) and kept for the logs. Any other connection was counted at
// accept, and its X-Forwarded-For means nothing.
func (l *limits) admitUpgrade(c *conn, fwd *forwardedFor) bool {
	s := c.srv
	if len(l.proxies) == 0 || fwd == nil && l.cfg.MaxConnsPerIP <= 0 {
		return true
	}
	fd := c.desc.Fd()
	peer := peerIP(fd)
	if !l.proxies.trusts(peer) {
		return true
	}
	client, st := fwd.client(l.proxies)
	if why := st.label(); why != "" {
		s.metrics.ForwardedIgnored.Add(1)
		s.events.ignoredForwarded(fd, why)
	}
	a := clientAddr{ip: peer}
	if st == forwardedOK {
		a = clientAddr{ip: client, forwarded: true}
	}
	keep := a.forwarded && s.events.debug()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.cfg.MaxConnsPerIP > 0 && !l.countLocked(c, a):
		if a.forwarded {
			l.addrOf[c] = a // for the refusal's log line; release drops it
		}
		return false
	case l.cfg.MaxConnsPerIP <= 0 && keep:
		l.addrOf[c] = a
	}
	return true
}

// forwardedClient is the client address X-Forwarded-For named for c, if
// limits kept one (see clientAddr).
func (l *limits) forwardedClient(c *conn) (netip.Addr, bool) {
	if len(l.proxies) == 0 {
		return netip.Addr{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrOf[c]
	return a.ip, a.forwarded
}

// admitUser counts one more connection of user ("" is not limited).
func (l *limits) admitUser(user string) bool {
	if l.cfg.MaxConnsPerUser <= 0 || user == "" {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perUsr[user] >= l.cfg.MaxConnsPerUser {
		return false
	}
	l.perUsr[user]++
	return true
}

// release uncounts a closed connection.
func (l *limits) release(c *conn) {
	if l.cfg.MaxConnsPerIP <= 0 && l.cfg.MaxConnsPerUser <= 0 && len(l.proxies) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.addrOf[c]; ok {
		delete(l.addrOf, c)
		if a.counted {
			if l.perIP[a.ip]--; l.perIP[a.ip] <= 0 {
				delete(l.perIP, a.ip)
			}
		}
	}
	if c.sess != nil && c.sess.userID() != "" && l.cfg.MaxConnsPerUser > 0 {
		u := c.sess.userID()
		if l.perUsr[u]--; l.perUsr[u] <= 0 {
			delete(l.perUsr, u)
		}
	}
}

// peerIP reads a socket's peer address (only when per-IP limits are on:
// accept4 asks for none, to keep accepting allocation-free).
func peerIP(fd int) netip.Addr {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return netip.Addr{}
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap()
	}
	return netip.Addr{}
}
