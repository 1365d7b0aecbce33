package gateway

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Admission: every bound on who may connect, in one place. admitNew runs
// for each accepted socket before it is registered; admitUser when its
// upgrade names a user; release when it closes.

// acceptBurstDivisor: the accept-rate bucket holds 1/acceptBurstDivisor
// of a second's worth of handshakes.
const acceptBurstDivisor = 10

// limits counts connections per client IP and per user, and paces
// handshakes.
type limits struct {
	cfg *Config

	mu     sync.Mutex
	perIP  map[netip.Addr]int
	ipOf   map[*conn]netip.Addr // only when MaxConnsPerIP is set
	perUsr map[string]int

	// accept rate token bucket (accept path only: one goroutine at a time)
	acceptTokens float64
	acceptLast   time.Time
}

func newLimits(cfg *Config) *limits {
	return &limits{cfg: cfg, perIP: map[netip.Addr]int{}, ipOf: map[*conn]netip.Addr{}, perUsr: map[string]int{}}
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

// admitIP counts c against its peer address; false means too many.
func (l *limits) admitIP(c *conn, fd int) bool {
	if l.cfg.MaxConnsPerIP <= 0 {
		return true
	}
	ip := peerIP(fd)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip] >= l.cfg.MaxConnsPerIP {
		return false
	}
	l.perIP[ip]++
	l.ipOf[c] = ip
	return true
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
	if l.cfg.MaxConnsPerIP <= 0 && l.cfg.MaxConnsPerUser <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ip, ok := l.ipOf[c]; ok {
		delete(l.ipOf, c)
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
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
