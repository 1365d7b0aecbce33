package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/memory"
	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/gateway/presence"
	"github.com/wsgate/wsgate/netpoll"
)

// Server accepts connections on raw fds and runs them on a netpoll event
// loop. Create it with New, run it with Serve.
type Server struct {
	cfg      Config
	relayID  string // marks the commands it relays: not the node id, which may be pinned alike on several instances (relay.go)
	log      *slog.Logger
	start    time.Time
	upgrader upgrader
	metrics  Metrics
	events   *eventLog

	// discardLimit bounds the input a closing connection reads and drops
	// while it waits for the client to close (see conn.discard).
	discardLimit int
	// inflateFn is s.inflate, made once (compression.go).
	inflateFn func(dst, compressed []byte, limit int) ([]byte, error)

	broker      broker.Broker
	hub         *hub.Hub
	sendBatches *sendBatches // the hub's flushes go out in them (sendbatch.go)
	ns          *Namespaces
	presence    presence.Store
	limits      *limits
	clientSeq   atomic.Uint64
	hookSem     chan struct{}  // bounds connect-hook calls in flight
	hookWG      sync.WaitGroup // connect-hook goroutines, waited for at shutdown

	ln     *net.TCPListener
	rawLn  syscall.RawConn
	poller *netpoll.Poller

	// index is the connection table: by fd, and by user (index.go).
	index *connIndex

	acceptor  *acceptor
	serveOnce sync.Once
	phase     atomic.Int32 // phaseStarting … phaseStopped, for Ready and Alive

	metricsHandler http.Handler // see metrics.go
}

// A server's phases, in order.
const (
	phaseStarting int32 = iota // New returned, Serve not accepting yet
	phaseServing               // accepting connections
	phaseDraining              // Serve's context is done: closing connections
	phaseStopped               // Serve returned
)

// New validates cfg, binds the listener and starts the event loop. The
// server accepts nothing until Serve is called.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		start:    time.Now(),
		upgrader: upgrader{cfg: &cfg, origins: newOriginPolicy(cfg.AllowedOrigins)},
		index:    newConnIndex(int(lim.Cur)),
		events:   newEventLog(log, cfg.LogSummaryInterval),
		relayID:  strconv.FormatUint(rand.Uint64(), 36),
		// Twice the message limit: a client caught sending a message over
		// the limit can finish writing it and still read our close code.
		discardLimit: min(max(minDiscard, 2*cfg.MaxMessageBytes), math.MaxInt32-1),
	}
	s.upgrader.cfg = &s.cfg
	if s.cfg.NodeID == "" {
		// Client ids and presence members must be unique across instances.
		s.cfg.NodeID = "node-" + strconv.FormatUint(rand.Uint64(), 36)
	}
	s.ns = s.cfg.namespaces()
	s.limits = newLimits(&s.cfg)
	s.upgrader.forwarded = len(s.limits.proxies) > 0
	s.events.clients = s.limits
	s.hookSem = make(chan struct{}, maxHooksInFlight)
	if s.cfg.Hook == nil && s.cfg.Auth != nil {
		s.cfg.Hook = authHook{s.cfg.Auth}
	}
	s.presence = cfg.Presence
	if s.presence == nil {
		s.presence = presence.NewMemory()
	}
	s.broker = cfg.Broker
	if s.broker == nil {
		s.broker = memory.NewWithConfig(memory.Config{Node: cfg.NodeID, History: s.ns.HistoryPolicy(), IdempotencyTTL: cfg.IdempotencyTTL})
	}
	s.inflateFn = countedInflate(&s.metrics.MessagesInflated) // one for every decoder
	s.hub, s.sendBatches = newHub(&s.cfg, s.broker, log, &s.metrics)
	if err := s.broker.Start(brokerSink{s.hub, s}); err != nil {
		s.sendBatches.close()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	s.broker.Subscribe(commandChannel)
	s.hub.Start()
	var err error
	s.ln, s.rawLn, err = listen(context.Background(), cfg.Listen, cfg.ReusePort)
	if err != nil {
		s.hub.Close()
		s.sendBatches.close()
		s.broker.Close()
		return nil, err
	}
	s.poller, err = netpoll.New(netpoll.Config{
		Loops:          cfg.Loops,
		WorkersPerLoop: cfg.WorkersPerLoop,
		ScratchBytes:   readBufferBytes,
		OnError:        func(err error) { log.Error("epoll wait", "err", err) },
	})
	if err != nil {
		s.ln.Close()
		s.hub.Close()
		s.sendBatches.close()
		s.broker.Close()
		return nil, fmt.Errorf("start event loop: %w", err)
	}
	if s.metricsHandler, err = s.newMetricsHandler(); err != nil {
		s.poller.Close()
		s.ln.Close()
		s.hub.Close()
		s.sendBatches.close()
		s.broker.Close()
		return nil, err
	}
	return s, nil
}

// newHub makes the fan-out hub, with the batches its flushes are sent in
// (sendbatch.go) unless cfg turns them off.
func newHub(cfg *Config, b broker.Broker, log *slog.Logger, m *Metrics) (*hub.Hub, *sendBatches) {
	hubCfg := hub.Config{Compress: cfg.compressionPolicy(), CompressMinBytes: cfg.CompressionMinBytes}
	batches := &sendBatches{}
	if cfg.BatchSends {
		batches = newSendBatches(max(2, runtime.GOMAXPROCS(0)), log, m)
	}
	if batches.enabled() {
		hubCfg.FlushAll = batches.flushAll
	}
	return hub.New(hubCfg, b), batches
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Ready reports whether the server should be sent clients: it is accepting
// connections, not draining, and its broker (if it can tell) is connected
// and subscribed (Redis: not unreachable, not resubscribing).
func (s *Server) Ready() bool {
	if s.phase.Load() != phaseServing {
		return false
	}
	if r, ok := s.broker.(interface{ Ready() bool }); ok {
		return r.Ready()
	}
	return true
}

// Alive reports whether the process can still serve: every event loop
// dispatches events (each answers a probe through its epoll instance and
// workers before ctx is done). It does not depend on the broker. It is
// true while draining, false once Serve has returned.
func (s *Server) Alive(ctx context.Context) error {
	if s.phase.Load() == phaseStopped {
		return errors.New("gateway: stopped")
	}
	return s.poller.Probe(ctx)
}

// Metrics returns the server's live counters.
func (s *Server) Metrics() *Metrics { return &s.metrics }

// now is the server clock: monotonic nanoseconds since start.
func (s *Server) now() int64 { return int64(time.Since(s.start)) }

// at converts a server clock value to a time for the timer wheel.
func (s *Server) at(t int64) time.Time { return s.start.Add(time.Duration(t)) }

// Serve accepts connections until ctx is done, then shuts down gracefully:
// stop accepting, close every connection with 1001 spread over DrainWindow,
// force-close what remains, stop the event loop. It returns nil after a
// clean shutdown. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	err := errors.New("gateway: Serve called twice")
	s.serveOnce.Do(func() {
		defer s.phase.Store(phaseStopped)
		if err = s.startAccepting(); err != nil {
			s.poller.Close()
			s.ln.Close()
			return
		}
		s.phase.Store(phaseServing)
		summaryCtx, stopSummaries := context.WithCancel(context.Background())
		summariesDone := make(chan struct{})
		go s.events.run(summaryCtx, summariesDone)
		<-ctx.Done()
		s.phase.Store(phaseDraining)
		err = s.shutdown()
		stopSummaries()
		<-summariesDone
	})
	return err
}

// acceptor accepts on the listener's fd, registered with netpoll like a
// connection. Accepting does no handshake work, so a storm of dialers is
// drained from the backlog as fast as accept4 + epoll_ctl allow.
type acceptor struct {
	desc netpoll.Desc
	srv  *Server
	mu   sync.Mutex // orders Rearm against Detach at shutdown
}

// maxAcceptsPerEvent bounds one dispatch so that the established
// connections of the same loop get their turn during a storm: 64 accepts
// (or refusals) take well under a millisecond. The listener stays
// readable, so it is dispatched again at once, behind whatever became
// ready meanwhile.
const maxAcceptsPerEvent = 64

func (a *acceptor) HandleEvent(_ *netpoll.Worker, _ netpoll.Event) {
	s := a.srv
	for range maxAcceptsPerEvent {
		fd, err := accept4(a.desc.Fd())
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			s.metrics.AcceptErrors.Add(1)
			s.log.Warn("accept", "err", err)
			// EMFILE and friends: back off instead of spinning on a
			// readable listener we cannot serve.
			a.desc.SetTimer(time.Now().Add(50 * time.Millisecond))
			a.desc.Park()
			return
		}
		s.admit(fd)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.desc.Rearm(false); err != nil && !a.desc.Closed() {
		s.log.Error("rearm listener", "err", err)
	}
}

func (s *Server) startAccepting() error {
	var lfd int
	if err := s.rawLn.Control(func(fd uintptr) { lfd = int(fd) }); err != nil {
		return fmt.Errorf("listener fd: %w", err)
	}
	s.acceptor = &acceptor{srv: s}
	// The listener stays urgent: accepting is cheap and must keep the
	// kernel's backlog drained in a storm (deferred behind the handshakes
	// it creates, it fell behind: listen overflows); its batches are small.
	return s.poller.Register(&s.acceptor.desc, lfd, s.acceptor, time.Time{})
}

func (s *Server) stopAccepting() error {
	s.acceptor.mu.Lock()
	err := s.acceptor.desc.Detach()
	s.acceptor.mu.Unlock()
	return errors.Join(err, s.ln.Close())
}

// busyResponse answers connections beyond MaxHandshakes, MaxConns or the
// accept rate: a quick, explicit "come back later" instead of a timeout.
var busyResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

// tooManyFromIP answers connections beyond MaxConnsPerIP.
var tooManyFromIP = []byte("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

// refuse answers a fresh connection with a canned response (best effort:
// one non-blocking write) and closes it, cheaply: it is never registered,
// so a storm of refusals holds no fd. Our side is shut down first and the
// request, if it already arrived, is dropped unread: closing a socket with
// unread input sends a RST, which can destroy the response before the
// client reads it.
func (s *Server) refuse(fd int, status int, label string, resp []byte) {
	s.events.refusedHandshake(fd, nil, status, label, "")
	_, _ = netpoll.Write(fd, resp)
	_ = unix.Shutdown(fd, unix.SHUT_WR)
	_, _ = netpoll.Discard(fd, maxRefusedRequest)
	unix.Close(fd)
}

// maxRefusedRequest bounds what refuse drops unread: more than any upgrade
// request (--max-handshake-bytes is at most half a read buffer).
const maxRefusedRequest = readBufferBytes

// admit registers a freshly accepted fd with the event loop, if admission
// (limits.go) lets it in.
func (s *Server) admit(fd int) {
	s.metrics.ConnsAccepted.Add(1)
	if !s.index.fits(fd) { // cannot happen: fds stay below RLIMIT_NOFILE
		unix.Close(fd)
		return
	}
	now := s.now()
	c := &conn{srv: s, lastRead: now}
	if r, ok := s.limits.admitNew(c, fd, &s.metrics, time.Now()); !ok {
		s.refuse(fd, r.status, r.label, r.resp)
		return
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	// Keep at most notSentLowat unsent bytes in the kernel: beyond that the
	// socket reports EAGAIN and the rest waits in our queue, where
	// MaxQueueBytes judges it. Without it a client that does not read can
	// hide megabytes in the kernel's send buffer (autotuned up to
	// tcp_wmem's maximum) before its backlog even starts to count.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
	if s.cfg.Heartbeat == HeartbeatTCP {
		setKeepalive(fd, s.cfg)
	}
	// Handshakes yield to established connections (see netpoll's ready
	// queue); the upgrade makes the connection urgent.
	c.desc.SetDeferrable(true)
	s.metrics.HandshakesActive.Add(1)
	s.metrics.ConnsOpen.Add(1)
	s.index.put(fd, c)
	if err := s.poller.RegisterEdge(&c.desc, fd, c, s.at(now+int64(s.cfg.HandshakeTimeout))); err != nil {
		s.log.Error("register connection", "err", err)
		s.index.put(fd, nil)
		s.metrics.HandshakesActive.Add(-1)
		s.metrics.ConnsOpen.Add(-1)
		s.limits.release(c)
		unix.Close(fd)
	}
}

// notSentLowat is TCP_NOTSENT_LOWAT for accepted connections: enough
// unsent data to keep any link busy between two writes, little enough that
// a stalled client's backlog shows in its queue.
const notSentLowat = 128 << 10

// forget removes a closing connection from the table (before its fd number
// can be reused).
func (s *Server) forget(c *conn) {
	s.index.remove(c.desc.Fd(), c)
	s.metrics.ConnsOpen.Add(-1)
}

// drainSteps is how many batches a graceful shutdown is split into.
const drainSteps = 50

// drainGrace is how long the last drained connections get to close their
// side before they are closed regardless.
const drainGrace = 500 * time.Millisecond

func (s *Server) shutdown() error {
	start := time.Now()
	defer func() { s.log.Info("shutdown complete", "took", time.Since(start).Round(time.Millisecond)) }()
	// The phase is already phaseDraining: Ready is false (/readyz 503).
	// Keep accepting during the drain, but only to answer 503 + Retry-After
	// to each request (conn.handshakeWith): a balancer that still sends a
	// client here retries it on another instance at once, where a closed
	// port would cost it a failed connect.
	s.log.Info("draining connections", "open", s.metrics.ConnsOpen.Load(), "window", s.cfg.DrainWindow)

	// Close connections with 1001 in batches spread over the drain window,
	// so their clients do not all reconnect in the same instant.
	open := s.index.all()
	batch := max(1, (len(open)+drainSteps-1)/drainSteps)
	for i := 0; i < len(open); i += batch {
		if i > 0 {
			if s.metrics.ConnsOpen.Load() == 0 {
				break // everyone already left: no reason to wait out the window
			}
			time.Sleep(s.cfg.DrainWindow / drainSteps)
		}
		for _, c := range open[i:min(i+batch, len(open))] {
			c.request(requestDrain)
		}
	}
	if err := s.stopAccepting(); err != nil {
		s.log.Warn("stop accepting", "err", err)
	}
	// A connection admitted just before the drain began may have missed
	// the list above; draining twice is harmless.
	for _, c := range s.index.all() {
		c.request(requestDrain)
	}
	// Give the last batch a moment to answer, then force what remains, so
	// shutdown ends within the drain window plus about a second.
	s.waitConns(time.Now().Add(drainGrace))
	for _, c := range s.index.all() {
		c.request(requestKill)
	}
	s.waitConns(time.Now().Add(time.Second))
	s.hookWG.Wait() // hook calls are bounded by the handshake timeout
	err := s.poller.Close()
	// Workers are gone: whatever is left can be closed directly.
	for _, c := range s.index.all() {
		c.mu.Lock()
		c.closeNowLocked()
		c.mu.Unlock()
		if c.sess != nil {
			c.sess.closed()
		}
	}
	s.hub.Close()
	s.sendBatches.close()
	err = errors.Join(err, s.presence.Close(), s.broker.Close()) // presence first: it may use the broker's Redis client
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// draining reports whether shutdown has begun: new handshakes are refused
// with 503 from then on.
func (s *Server) draining() bool { return s.phase.Load() >= phaseDraining }

// waitConns waits until no connection is open or the deadline passes.
func (s *Server) waitConns(deadline time.Time) {
	for s.metrics.ConnsOpen.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}
