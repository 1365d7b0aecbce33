package gateway

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// CloseRateLimited closes a connection that keeps exceeding its command
// rate; CloseTokenExpired one that did not refresh its token in time.
const (
	CloseRateLimited  uint16 = 4029
	CloseTokenExpired uint16 = 4004
)

// limiter is a token bucket: rate tokens per second up to burst. It lives
// in the session (worker-only), so it needs no lock.
type limiter struct {
	rate   float64
	burst  float64
	tokens float64
	last   int64 // server clock
	denied int   // consecutive refusals
}

func newLimiter(rate float64, burst int, now int64) limiter {
	return limiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// allow takes a token if there is one.
func (l *limiter) allow(now int64) bool {
	if l.rate <= 0 {
		return true
	}
	l.tokens = min(l.burst, l.tokens+float64(now-l.last)/1e9*l.rate)
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		l.denied = 0
		return true
	}
	l.denied++
	return false
}

// allowCommand applies the command rate; a refused command gets error 107.
func (c *conn) allowCommand(id uint32) bool {
	if c.sess.limiter.allow(c.srv.now()) {
		return true
	}
	c.srv.metrics.RateLimited.Add(1)
	if c.sess.limiter.denied <= int(c.sess.limiter.burst) {
		c.replyError(id, codec.CodeRateLimited, "rate limited: slow down")
	}
	return false
}

// rateLimitError closes a connection that stayed over its rate for a
// whole burst of refusals (it is not slowing down), else lets it go on.
func (c *conn) rateLimitError() error {
	if c.sess.limiter.denied > int(c.sess.limiter.burst) {
		return &wsframe.Error{Code: CloseRateLimited, Reason: "rate limit exceeded"}
	}
	return nil
}

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

// admitHandshake paces new connections: false means answer 503. The
// bucket holds a tenth of a second's worth (at least one): a full second's
// worth let a whole second of handshakes through at once, which is the
// burst the rate is there to spread.
func (l *limits) admitHandshake(now time.Time) bool {
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
	if c.sess != nil && c.sess.identity.UserID != "" && l.cfg.MaxConnsPerUser > 0 {
		u := c.sess.identity.UserID
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
