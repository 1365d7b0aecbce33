package loadclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/wsframe"
	"github.com/wsgate/wsgate/netpoll"
)

// Pool is a set of client connections sharing one event loop.
type Pool struct {
	cfg    Config
	target target
	poller *netpoll.Poller
	conns  []*Conn

	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	messagesIn, messagesOut, pingsIn atomic.Uint64
	bytesIn                          atomic.Uint64 // read from sockets (101 responses included)
	deflated                         atomic.Uint64 // upgrades that negotiated permessage-deflate
	inflates                         *inflateCache // Config.Compression: each distinct message inflated once

	// sem bounds dials in flight (nil: unbounded); a dial holds a slot from
	// connect start until it is upgraded or failed.
	sem     chan struct{}
	dialCtx context.Context // dialAll's: redials stop with it
	allDone chan struct{}   // closed when no dial is pending
	dialed  chan struct{}   // closed when the dialing goroutine is done (Start)

	mu sync.Mutex // guards everything below
	st dialStats
}

// dialStats is what the pool records as dials and connections end.
type dialStats struct {
	pending    int
	connected  int
	failed     int
	redials    int
	firstError string
	latencies  []time.Duration
	start, end time.Time
	closed     int
	closes     map[int]int
	protoErrs  int
	firstProto string
	upgraded   []bool // by conn index: reached the open state during Dial
}

// Dial opens cfg.Conns connections and returns when every one is either
// upgraded or failed, or ctx is done (then dials still pending are aborted
// and counted as failed). The error is only for an unusable Config or an
// event loop that cannot start; failed dials are in Stats. The caller must
// Close the pool.
func Dial(ctx context.Context, cfg Config) (*Pool, error) {
	p, err := newPool(cfg)
	if err != nil {
		return nil, err
	}
	p.dialAll(ctx)
	close(p.dialed)
	return p, nil
}

// Start is Dial without the wait: it returns at once and dials in the
// background, so Stats shows a ramp as it happens. Dialed is closed when
// Dial would have returned; ending ctx aborts the dials still pending. The
// caller must wait for Dialed before Close.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	p, err := newPool(cfg)
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(p.dialed)
		p.dialAll(ctx)
	}()
	return p, nil
}

// Dialed is closed once every dial has ended (see Start).
func (p *Pool) Dialed() <-chan struct{} { return p.dialed }

func newPool(cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	t, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	poller, err := netpoll.New(netpoll.Config{TimerTick: cfg.TimerTick})
	if err != nil {
		return nil, fmt.Errorf("loadclient: start event loop: %w", err)
	}
	p := &Pool{cfg: cfg, target: t, poller: poller, conns: make([]*Conn, cfg.Conns),
		allDone: make(chan struct{}), dialed: make(chan struct{})}
	if cfg.Compression {
		p.inflates = newInflateCache()
	}
	for i := range p.conns {
		p.conns[i] = &Conn{pool: p, index: i}
	}
	if cfg.DialsInFlight > 0 {
		p.sem = make(chan struct{}, cfg.DialsInFlight)
	}
	p.st.closes = map[int]int{}
	p.st.upgraded = make([]bool, cfg.Conns)
	return p, nil
}

// dialAll starts every dial (waiting for a free slot when bounded) and
// waits until none is pending.
func (p *Pool) dialAll(ctx context.Context) {
	p.mu.Lock()
	p.dialCtx = ctx
	p.st.start = time.Now()
	p.st.pending = len(p.conns)
	p.mu.Unlock()
	if len(p.conns) == 0 {
		p.finishDials()
	}
	start := time.Now()
	for i, c := range p.conns {
		if !p.pace(ctx, start, i) || !p.acquire(ctx) {
			p.skip(len(p.conns)-i, fmt.Errorf("dial aborted: %w", ctx.Err()))
			break
		}
		p.start(c)
	}
	select {
	case <-p.allDone:
	case <-ctx.Done():
		p.abortPending()
		<-p.allDone
	}
}

// pace waits until dial i is due under cfg.DialRate; false when ctx
// ended first.
func (p *Pool) pace(ctx context.Context, start time.Time, i int) bool {
	if p.cfg.DialRate <= 0 {
		return ctx.Err() == nil
	}
	wait := time.Until(start.Add(time.Duration(float64(i) / p.cfg.DialRate * float64(time.Second))))
	if wait <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// acquire takes a dial slot; false when ctx ended first.
func (p *Pool) acquire(ctx context.Context) bool {
	if p.sem == nil {
		return ctx.Err() == nil
	}
	select {
	case p.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *Pool) release() {
	if p.sem != nil {
		<-p.sem
	}
}

// start opens c's socket and hands it to the event loop, armed for the
// writability that signals the end of the connect.
func (p *Pool) start(c *Conn) {
	c.started = time.Now()
	src := p.target.sources[c.index%len(p.target.sources)]
	dst := p.target.dst // Connect writes into it, and redials run concurrently
	fd, err := openSocket(src, &dst)
	if err != nil {
		p.dialFailed(c, err)
		return
	}
	// c.mu is held until write interest is armed: a handler that runs at
	// once (an early EPOLLERR) waits for it, and its Rearm comes after ours.
	c.mu.Lock()
	c.state = stateDialing
	err = p.poller.RegisterEdge(&c.desc, fd, c, c.started.Add(p.cfg.HandshakeTimeout))
	if err != nil {
		c.state = stateClosed
		_ = unix.Close(fd)
	} else {
		// If this fails, the handshake timer still ends the dial.
		_ = c.desc.ArmIfIdle(true)
	}
	c.mu.Unlock()
	if err != nil {
		p.dialFailed(c, err)
	}
}

// openSocket creates a non-blocking socket bound to src and starts its
// connect to dst.
func openSocket(src [4]byte, dst *unix.SockaddrInet4) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := prepareSocket(fd, src, dst); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func prepareSocket(fd int, src [4]byte, dst *unix.SockaddrInet4) error {
	// Without IP_BIND_ADDRESS_NO_PORT, bind picks a port for the source
	// address alone and ~28k ports cap all connections; with it the port is
	// chosen at connect time per 4-tuple.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
		return fmt.Errorf("setsockopt IP_BIND_ADDRESS_NO_PORT: %w", err)
	}
	// Frames are small and latency is measured: never wait for Nagle.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fmt.Errorf("setsockopt TCP_NODELAY: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src}); err != nil {
		return fmt.Errorf("bind %d.%d.%d.%d: %w", src[0], src[1], src[2], src[3], err)
	}
	// EINTR leaves the connect running in the background, like EINPROGRESS.
	if err := unix.Connect(fd, dst); err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		return fmt.Errorf("connect %d.%d.%d.%d:%d: %w", dst.Addr[0], dst.Addr[1], dst.Addr[2], dst.Addr[3], dst.Port, err)
	}
	return nil
}

// abortPending asks every dial still in progress to fail.
func (p *Pool) abortPending() {
	for _, c := range p.conns {
		c.mu.Lock()
		pending := c.state == stateDialing || c.state == stateHandshake
		if pending {
			c.requests |= requestAbort
		}
		c.mu.Unlock()
		if pending {
			c.desc.Notify(netpoll.EventNotify)
		}
	}
}

func (p *Pool) dialSucceeded(c *Conn, latency time.Duration) {
	p.mu.Lock()
	p.st.connected++
	p.st.latencies = append(p.st.latencies, latency)
	p.st.upgraded[c.index] = true
	p.dialEndedLocked()
	p.mu.Unlock()
	p.release()
}

// dialFailed ends c's dial, or starts it again later (Config.Redials).
func (p *Pool) dialFailed(c *Conn, err error) {
	p.release()
	if !p.redial(c) {
		p.countFailed(c, err)
	}
}

func (p *Pool) countFailed(c *Conn, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.failed++
	if p.st.firstError == "" {
		p.st.firstError = fmt.Sprintf("conn %d: %v", c.index, err)
	}
	p.dialEndedLocked()
}

// redial schedules a new dial of c, whose failed one is closed, when it
// has attempts left and dialing goes on; the dial stays pending meanwhile.
// The delay (with jitter, so a burst of failures does not come back as a
// burst) is far longer than the dispatch that failed takes to end.
func (p *Pool) redial(c *Conn) bool {
	p.mu.Lock()
	ctx := p.dialCtx
	if c.redials >= p.cfg.Redials || ctx == nil || ctx.Err() != nil || p.closing.Load() {
		p.mu.Unlock()
		return false
	}
	c.redials++
	p.st.redials++
	p.mu.Unlock()
	delay := p.cfg.RedialDelay + rand.N(p.cfg.RedialDelay)
	time.AfterFunc(delay, func() {
		// Taking p.mu orders what the failed dial wrote before what follows.
		p.mu.Lock()
		ctx := p.dialCtx
		p.mu.Unlock()
		if ctx.Err() != nil || p.closing.Load() || !p.acquire(ctx) {
			p.countFailed(c, fmt.Errorf("redial aborted: %w", context.Cause(ctx)))
			return
		}
		c.reset()
		p.start(c)
	})
	return true
}

// skip counts n dials that were never started as failed.
func (p *Pool) skip(n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.failed += n
	if p.st.firstError == "" {
		p.st.firstError = err.Error()
	}
	p.dialsEndedLocked(n)
}

func (p *Pool) dialEndedLocked() { p.dialsEndedLocked(1) }

func (p *Pool) dialsEndedLocked(n int) {
	p.st.pending -= n
	if p.st.pending == 0 {
		p.st.end = time.Now()
		close(p.allDone)
	}
}

func (p *Pool) finishDials() {
	p.mu.Lock()
	p.st.end = time.Now()
	p.mu.Unlock()
	close(p.allDone)
}

func (p *Pool) connClosed(code int) {
	p.mu.Lock()
	p.st.closed++
	p.st.closes[code]++
	p.mu.Unlock()
}

func (p *Pool) protocolError(err *wsframe.Error) {
	p.mu.Lock()
	p.st.protoErrs++
	if p.st.firstProto == "" {
		p.st.firstProto = err.Error()
	}
	p.mu.Unlock()
}

// Conns returns the connections that were upgraded during Dial, in index
// order (some may have closed since: see Conn.Open).
func (p *Pool) Conns() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Conn, 0, p.st.connected)
	for i, ok := range p.st.upgraded {
		if ok {
			out = append(out, p.conns[i])
		}
	}
	return out
}

// Close closes every socket and stops the event loop's goroutines. No
// callback runs after it returns, and none reports these closes. It must
// not be called while Dial runs.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		// Stop the workers first so that no handler runs while we close
		// fds from this goroutine.
		err := p.poller.Close()
		for _, c := range p.conns {
			if p.cfg.ResetOnClose {
				c.lingerZero()
			}
			c.closeNow()
		}
		if err != nil {
			p.closeErr = fmt.Errorf("loadclient: stop event loop: %w", err)
		}
	})
	return p.closeErr
}
