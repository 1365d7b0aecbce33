// Package naive is the reference server wsgate is benchmarked against: the
// idiomatic Go WebSocket server, written the way gorilla/websocket's chat
// example teaches.
//
//   - net/http accepts and upgrades; gorilla/websocket frames.
//   - Two goroutines per connection: a reader running commands and a writer
//     draining a buffered send channel, with 4 KiB read and write buffers.
//   - Write deadlines, pings, a pong deadline and a read limit, so dead and
//     abusive clients are dropped.
//   - A hub that is one map under one RWMutex; a publication is framed once
//     per encoding as a websocket.PreparedMessage and offered to every
//     subscriber without blocking; a subscriber that does not keep up is
//     closed (4008), as the chat hub does.
//
// It speaks wsgate's client protocol (codec/README.md) on /ws through the
// same codec and the same broker interface, and echoes on /echo, so a
// benchmark measures the connection model and nothing else.
package naive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/memory"
)

// Handshake bounds, the same as wsgate's defaults.
const (
	handshakeTimeout  = 5 * time.Second
	maxHandshakeBytes = 8192
)

// Server is the naive WebSocket server. New binds the listeners; Serve runs
// until its context ends.
type Server struct {
	cfg      Config
	log      *slog.Logger
	broker   broker.Broker
	hub      *hub
	metrics  metrics
	upgrader websocket.Upgrader

	ln, debugLn       net.Listener
	httpSrv, debugSrv *http.Server

	mu      sync.Mutex
	closing bool
	clients map[*client]struct{}
	// wg counts upgrade handlers and connection goroutines; Add happens
	// only under mu while !closing, so Wait in shutdown cannot miss one.
	wg sync.WaitGroup
}

// New binds cfg.Listen (and cfg.DebugListen when set) and starts the broker
// with the server's hub as its sink. The server owns the broker from then
// on: Serve closes it. log nil discards logs.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, broker: cfg.Broker, clients: map[*client]struct{}{}}
	if s.broker == nil {
		s.broker = memory.New(nodeID())
	}
	s.hub = newHub(s.broker, &s.metrics, cfg.Compression && cfg.CompressionMode == CompressionPerConnection)
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:   BufferSize,
		WriteBufferSize:  BufferSize,
		HandshakeTimeout: handshakeTimeout,
		// gorilla negotiates permessage-deflate without context takeover
		// and, once negotiated, compresses every data message it writes.
		EnableCompression: cfg.Compression,
		// CheckOrigin nil: gorilla's default, same host or no Origin, which
		// is also wsgate's default policy.
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	if err := s.broker.Start(s.hub); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("naive: start broker: %w", err)
	}
	s.httpSrv = s.newHTTPServer()
	if s.debugLn != nil {
		s.debugSrv = &http.Server{Handler: debugHandler(&s.metrics), ReadHeaderTimeout: handshakeTimeout}
	}
	return s, nil
}

func nodeID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return fmt.Sprintf("naive-%s-%d", host, os.Getpid())
}

// listen binds the listeners. TCP keepalive is off, as in wsgate: pings
// already detect dead peers, and at 20k sockets keepalive probes are a
// load the comparison should not carry on one side only.
func (s *Server) listen() error {
	lc := net.ListenConfig{KeepAlive: -1}
	if s.cfg.ReusePort {
		lc.Control = reusePort
	}
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("naive: listen: %w", err)
	}
	s.ln = ln
	if s.cfg.DebugListen == "" {
		return nil
	}
	if s.debugLn, err = net.Listen("tcp", s.cfg.DebugListen); err != nil {
		_ = s.ln.Close()
		return fmt.Errorf("naive: debug listen: %w", err)
	}
	return nil
}

func (s *Server) closeListeners() {
	_ = s.ln.Close()
	if s.debugLn != nil {
		_ = s.debugLn.Close()
	}
}

func (s *Server) newHTTPServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { s.serveConn(w, r, false) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { s.serveConn(w, r, true) })
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: handshakeTimeout,
		MaxHeaderBytes:    maxHandshakeBytes,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.metrics.ConnsAccepted.Add(1)
			}
		},
		// Accept errors (EMFILE at the fd limit) are worth seeing; net/http
		// retries them itself.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Addr is the address clients connect to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// DebugAddr is the metrics and pprof address, nil when it is off.
func (s *Server) DebugAddr() net.Addr {
	if s.debugLn == nil {
		return nil
	}
	return s.debugLn.Addr()
}

// Serve accepts connections until ctx ends, then closes every connection
// with 1001, waits for their goroutines, closes the broker and returns nil.
// It returns early with an error if the listener fails. Call it once.
func (s *Server) Serve(ctx context.Context) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.httpSrv.Serve(s.ln) }()
	debugDone := make(chan struct{})
	go func() {
		defer close(debugDone)
		if s.debugSrv != nil {
			_ = s.debugSrv.Serve(s.debugLn)
		}
	}()
	if a := s.DebugAddr(); a != nil {
		s.log.Info("naive server listening", "addr", s.Addr().String(), "debug", a.String())
	} else {
		s.log.Info("naive server listening", "addr", s.Addr().String())
	}

	var err error
	select {
	case <-ctx.Done():
		s.shutdown()
		err = <-serveErr
	case err = <-serveErr:
		s.shutdown()
	}
	<-debugDone
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("naive: serve: %w", err)
}

// shutdown stops accepting, closes every client with 1001 and waits for all
// connection goroutines before closing the broker, so no Deliver runs after.
func (s *Server) shutdown() {
	start := time.Now()
	s.mu.Lock()
	s.closing = true
	clients := slices.Collect(maps.Keys(s.clients))
	s.mu.Unlock()

	_ = s.httpSrv.Close() // listener and not-yet-upgraded connections
	for _, c := range clients {
		c.stop(closeGoingAway, "server shutting down")
	}
	s.wg.Wait()
	if err := s.broker.Close(); err != nil {
		s.log.Warn("close broker", "err", err)
	}
	if s.debugSrv != nil {
		_ = s.debugSrv.Close()
	}
	s.log.Info("naive server stopped", "closed", len(clients), "took", time.Since(start).Round(time.Millisecond))
}

// enter counts an upgrade handler in; false once shutting down.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// register adds an upgraded client and counts its two goroutines in.
func (s *Server) register(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.clients[c] = struct{}{}
	s.wg.Add(2)
	s.metrics.ConnsOpen.Add(1)
	return true
}

// unregister is the writer's last act: the socket is closed by then.
func (s *Server) unregister(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	s.metrics.ConnsOpen.Add(-1)
}

// serveConn upgrades one request and starts the connection's reader and
// writer; the net/http goroutine then returns, as in gorilla's chat.
func (s *Server) serveConn(w http.ResponseWriter, r *http.Request, echo bool) {
	if !s.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	enc, hdr := codec.Msgpack, http.Header{}
	if !echo {
		if proto := selectSubprotocol(r); proto != "" {
			enc, _ = codec.EncodingFor(proto)
			hdr.Set("Sec-WebSocket-Protocol", proto)
		}
	}
	conn, err := s.upgrader.Upgrade(w, r, hdr) // on error gorilla has answered
	if err != nil {
		s.metrics.HandshakesFailed.Add(1)
		return
	}
	s.metrics.ConnsUpgraded.Add(1)
	c := newClient(s, conn, enc, echo)
	if !s.register(c) { // shutdown began during the upgrade
		msg := websocket.FormatCloseMessage(closeGoingAway, "server shutting down")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.cfg.WriteWait))
		_ = conn.Close()
		return
	}
	go c.writeLoop()
	go c.readLoop()
}

// selectSubprotocol picks the first offered subprotocol, in the client's
// order, that is a wsgate encoding (codec/README.md §1). gorilla's own
// Upgrader.Subprotocols would pick in the server's order instead. None
// offered or none known: "" (MessagePack, no header), as wsgate does.
func selectSubprotocol(r *http.Request) string {
	for _, p := range websocket.Subprotocols(r) {
		if _, ok := codec.EncodingFor(p); ok && p != "" {
			return p
		}
	}
	return ""
}

// reusePort sets SO_REUSEPORT on the listening socket before bind.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("naive: SO_REUSEPORT: %w", serr)
	}
	return nil
}
