package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/api"
	"github.com/wsgate/wsgate/gateway/auth"
	"github.com/wsgate/wsgate/gateway/broker"
	redisbroker "github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/presence"
	"github.com/wsgate/wsgate/internal/memtrim"
)

// serveFlags binds every serve flag to cfg; each flag is also the
// environment variable WSGATE_<FLAG> and the config-file key <flag> with
// dashes as underscores (see config.go).
type serveFlags struct {
	cfg          gateway.Config
	debugListen  string
	broker       string
	redis        redisbroker.Config
	configFile   string
	auth         auth.Config
	jwtSecret    string
	jwtPublicKey string
	apiListen    string
	presenceTTL  time.Duration
	memoryTrim   time.Duration
	apiKey       string
	level        slog.Level
}

// defaultNodeID is host-pid-random: unique per running instance, also in
// a container, where the pid is always 1 and a restarted container keeps
// its host name.
func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "wsgate"
	}
	var r [3]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), r)
}

func newServeFlags(fs *flag.FlagSet) *serveFlags {
	f := &serveFlags{cfg: gateway.DefaultConfig(), broker: "memory"}
	c := &f.cfg
	fs.StringVar(&c.Listen, "listen", c.Listen, "TCP address for WebSocket clients")
	fs.BoolVar(&c.ReusePort, "reuse-port", false, "set SO_REUSEPORT on the listener (several processes on one port)")
	fs.StringVar(&f.debugListen, "debug-listen", "", "address for pprof and /metrics (off when empty)")
	fs.DurationVar(&f.memoryTrim, "memory-trim-interval", 30*time.Second, "how often to look for free heap to return to the OS once the heap has gone quiet (0: leave it to Go)")
	fs.BoolVar(&c.Echo, "echo", false, "enable the raw echo endpoint (conformance tests, benchmarks)")
	fs.StringVar(&c.EchoPath, "echo-path", c.EchoPath, "path of the echo endpoint")
	fs.BoolVar(&c.Demo, "demo", false, "serve the demo chat page at / on the client listener")
	fs.StringVar(&c.WSPath, "ws-path", c.WSPath, "path of the client protocol endpoint")
	fs.Var((*stringList)(&c.AllowedOrigins), "allowed-origins", "comma-separated allowed Origin `values` (https://a.example, *.example.com, *); empty: same host or no Origin")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "largest incoming message (a compressed one once inflated); larger closes with 1009")
	fs.BoolVar(&c.Compression, "compression", c.Compression, "accept permessage-deflate offers (no context takeover; a namespace may turn it off with \"compression\": false)")
	fs.IntVar(&c.CompressionMinBytes, "compression-min-bytes", c.CompressionMinBytes, "frames with a shorter payload go out uncompressed")
	fs.IntVar(&c.MaxPublicationBytes, "max-publication-bytes", c.MaxPublicationBytes, "largest publication data (client publish: error 106; API: 400); at most --max-message-bytes less the command around it (--max-channel-bytes + 352)")
	fs.BoolVar(&c.BatchSends, "batch-sends", c.BatchSends, "write fan-out to up to 64 sockets with one io_uring_enter(2) (off, or io_uring unavailable: one write(2) per socket)")
	fs.IntVar(&c.MaxQueueBytes, "max-queue-bytes", c.MaxQueueBytes, "backlog per connection, once its socket refuses bytes, before it is closed as a slow consumer (4008)")
	fs.DurationVar(&c.MessageTimeout, "message-timeout", c.MessageTimeout, "a message must arrive in full within this long of its first byte, else close 4009")
	fs.IntVar(&c.MaxPartialBytes, "max-partial-bytes", c.MaxPartialBytes, "bytes of partial messages and requests held across all connections; over: close 4013 / 503")
	fs.IntVar(&c.MaxHandshakes, "max-handshakes", c.MaxHandshakes, "concurrent handshakes; beyond them new connections get 503")
	fs.IntVar(&c.MaxHandshakeBytes, "max-handshake-bytes", c.MaxHandshakeBytes, "largest HTTP upgrade request")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "deadline for completing the upgrade")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "ping a connection silent for this long")
	fs.DurationVar(&c.PongTimeout, "pong-timeout", c.PongTimeout, "close a connection silent for this long after a ping")
	fs.Var(&choice{val: (*string)(&c.Heartbeat), allowed: []string{string(gateway.HeartbeatPing), string(gateway.HeartbeatTCP)}}, "heartbeat",
		"`who` pings silent connections: ping (WebSocket pings; through any proxy) or tcp (the kernel's keepalive probes on the same schedule, no gateway CPU; clients connected directly or through an L4 balancer)")
	fs.DurationVar(&c.DrainWindow, "drain-window", c.DrainWindow, "spread shutdown closes (1001) over this long")
	fs.IntVar(&c.MaxChannelBytes, "max-channel-bytes", c.MaxChannelBytes, "longest channel name")
	fs.IntVar(&c.MaxChannelsPerConn, "max-channels-per-conn", c.MaxChannelsPerConn, "subscriptions per connection")
	fs.Var(&choice{val: &f.broker, allowed: []string{"memory", "redis"}}, "broker", "`broker`: memory (embedded, one instance) or redis (several instances)")
	fs.StringVar(&f.redis.URL, "redis-url", "redis://127.0.0.1:6379/0", "Redis for --broker redis: redis://[user:pass@]host:port/db, rediss://…, redis+cluster://h1:p,h2:p")
	fs.IntVar(&f.redis.PubSubShards, "redis-pubsub-shards", 4, "dedicated pub/sub connections on a standalone Redis")
	fs.IntVar(&f.redis.Partitions, "redis-partitions", 64, "hash-tagged channel partitions (every instance and backend must agree)")
	fs.StringVar(&f.redis.Prefix, "redis-prefix", "wsgate", "prefix of every Redis key and channel")
	fs.DurationVar(&f.redis.Timeout, "redis-timeout", 5*time.Second, "bound on every Redis round trip; a publish cut off by it is answered \"outcome unknown\" (113 / 503)")
	fs.StringVar(&c.NodeID, "node-id", defaultNodeID(), "this instance's name in publications")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", broker.DefaultIdempotencyTTL, "how long a publish's idempotency_key is remembered (every instance, with --broker redis)")
	fs.IntVar(&c.HistorySize, "history-size", c.HistorySize, "publications kept per channel for resume and the history command (0: none)")
	fs.DurationVar(&c.HistoryTTL, "history-ttl", c.HistoryTTL, "how long a publication stays in history")
	fs.BoolVar(&c.Recovery, "recovery", c.Recovery, "let a subscribe with a resume position replay what the client missed")
	fs.StringVar(&f.configFile, configFlag, "", "YAML or JSON config file: any flag as a key (max_queue_bytes: 2097152) and channel namespaces (see README)")
	fs.DurationVar(&f.presenceTTL, "presence-ttl", 30*time.Second, "with --broker redis: members of a crashed instance expire after this long (at least 1s)")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "connections in total (0: no limit); more get 503")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", 0, "connections per client IP (0: no limit); more get 429. Behind a proxy, see --trusted-proxies")
	fs.Var((*stringList)(&c.TrustedProxies), "trusted-proxies", "comma-separated `CIDRs` or addresses of proxies whose X-Forwarded-For names the client (its rightmost untrusted entry), for --max-conns-per-ip and the logs; empty: the TCP peer is the client")
	fs.IntVar(&c.MaxConnsPerUser, "max-conns-per-user", 0, "connections per user (0: no limit); more get 429")
	fs.Float64Var(&c.AcceptRate, "accept-rate", 0, "handshakes per second (0: no limit); more get 503 with Retry-After")
	fs.Float64Var(&c.CommandRate, "command-rate", 0, "commands per second per connection (0: no limit); over: error 107, then close 4029")
	fs.IntVar(&c.CommandBurst, "command-burst", c.CommandBurst, "command burst per connection")
	fs.DurationVar(&c.RefreshGrace, "refresh-grace", c.RefreshGrace, "time to send a refresh after the token expired before close 4004 (at least 1s)")
	fs.StringVar(&f.jwtSecret, "jwt-secret", "", "HS256 secret for connection tokens (or WSGATE_JWT_SECRET)")
	fs.StringVar(&f.jwtPublicKey, "jwt-public-key", "", "PEM file with the RS256/ES256 public key for connection tokens")
	fs.StringVar(&f.auth.JWKSFile, "jwks-file", "", "JWKS file with token verification keys")
	fs.StringVar(&f.auth.Issuer, "jwt-issuer", "", "required iss claim")
	fs.StringVar(&f.auth.Audience, "jwt-audience", "", "required aud claim")
	fs.DurationVar(&f.auth.Leeway, "jwt-leeway", defaultJWTLeeway, "clock skew allowed between the token issuer and the gateway (0 to 5m): "+
		"iat and nbf may be this far in the future and exp this far in the past (iat counts whole seconds, so a freshly minted token "+
		"on a clock a fraction of a second ahead needs at least 1s)")
	fs.StringVar(&f.auth.Cookie, "token-cookie", "", "cookie carrying the token (off when empty)")
	fs.StringVar(&f.auth.HookURL, "auth-hook-url", "", "connect hook: POST the handshake's cookies/headers here for a user id")
	fs.BoolVar(&f.auth.AllowAnonymous, "allow-anonymous", false, "with authentication configured, accept connections without a token")
	fs.StringVar(&f.apiListen, "api-listen", "", "address of the server HTTP API (off when empty)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key for --api-listen (or WSGATE_API_KEY)")
	fs.IntVar(&c.Loops, "loops", 0, "epoll instances (0: one per core)")
	fs.IntVar(&c.WorkersPerLoop, "workers-per-loop", 0, "workers per epoll instance (0: default)")
	fs.TextVar(&f.level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	return f
}

// stringList is a comma-separated flag value (a list in the config file).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Get() any       { return []string(*l) }
func (l *stringList) Set(v string) error {
	*l = nil
	if v != "" {
		*l = strings.Split(v, ",")
	}
	return nil
}

const serveSummary = "Run the gateway: WebSocket clients on --listen, metrics and health on --debug-listen,\n" +
	"the server API on --api-listen. SIGTERM or SIGINT drains the connections and exits 0;\n" +
	"SIGHUP re-reads --jwks-file (a file that does not load keeps the keys in use)."

const serveNotes = `Every flag can also be set in the environment as WSGATE_<FLAG> (WSGATE_MAX_QUEUE_BYTES)
and in the --config file as <flag> with dashes as underscores (max_queue_bytes).
Precedence: command line, then environment, then config file, then the default.`

func serve(args []string, stdout, stderr io.Writer) int {
	f, code, ok := parseServe(args, stdout, stderr)
	if !ok {
		return code
	}
	if err := f.cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "wsgate:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.level}))
	if err := runServer(f, log); err != nil {
		log.Error("wsgate stopped", "err", err)
		return 1
	}
	return 0
}

// parseServe reads serve's settings from the command line, the environment
// and the config file and checks them. ok is false when serve must not run:
// after -h (code 0) or a usage or configuration error (code 2, on stderr).
func parseServe(args []string, stdout, stderr io.Writer) (f *serveFlags, code int, ok bool) {
	fs := newFlagSet("serve", serveSummary, serveNotes)
	f = newServeFlags(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return nil, code, false
	}
	// A closure, not the method value f.cfg.DefaultNamespace: that would
	// copy cfg now, before the environment and the file set it.
	ns, err := loadSettings(fs, func() gateway.Namespace { return f.cfg.DefaultNamespace() })
	if err == nil {
		f.cfg.Namespaces = ns
		err = f.check()
	}
	if err == nil {
		err = f.configure()
	}
	if err != nil {
		fmt.Fprintln(stderr, "wsgate:", err)
		return nil, 2, false
	}
	return f, 0, true
}

// choice is a string flag with a fixed set of values.
type choice struct {
	val     *string
	allowed []string
}

func (c *choice) String() string {
	if c.val == nil {
		return ""
	}
	return *c.val
}

func (c *choice) Get() any { return *c.val }

func (c *choice) Set(v string) error {
	if !slices.Contains(c.allowed, v) {
		return fmt.Errorf("want %s", strings.Join(c.allowed, " or "))
	}
	*c.val = v
	return nil
}

func runServer(f *serveFlags, log *slog.Logger) error {
	nofile := raiseNofile(log)
	applyGCPercent(os.LookupEnv, log)
	// Bind the HTTP listeners first: an operator who asked for the API or
	// the health checks gets them or an exit, never a gateway without them.
	apiLn, err := listenOptional("--api-listen", f.apiListen)
	if err != nil {
		return err
	}
	debugLn, err := listenOptional("--debug-listen", f.debugListen)
	defer closeAll(apiLn, debugLn) // on every return; a second Close is harmless
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	defer reloadOnHangup(ctx, f.cfg.Auth, f.auth.JWKSFile, log)()
	// The health checks answer from here on, also while the broker
	// connects (Redis unreachable at start): /healthz 200, /readyz 503. The
	// client listener opens only with the gateway, once the broker is up.
	var gw atomic.Pointer[gateway.Server]
	if debugLn != nil {
		dbg := debugServer(&gw)
		go serveHTTP(dbg, debugLn, "debug listener", log)
		defer dbg.Close()
	}
	if f.broker == "redis" {
		f.redis.Node, f.redis.Log, f.redis.History = f.cfg.NodeID, log, f.cfg.HistoryPolicy()
		f.redis.IdempotencyTTL = f.cfg.IdempotencyTTL
		b, err := redisbroker.NewContext(ctx, f.redis)
		if err != nil {
			if ctx.Err() != nil {
				log.Info("stopped before Redis was reached: no client was accepted")
				return nil
			}
			return err
		}
		f.cfg.Broker = b
		f.cfg.Presence, err = presence.NewRedis(presence.RedisConfig{
			Client: b.Client(), Prefix: f.redis.Prefix, Partitions: b.Partitions(), Node: f.cfg.NodeID, Log: log, TTL: f.presenceTTL,
		})
		if err != nil {
			b.Close()
			return fmt.Errorf("presence: %w", err)
		}
	}
	var trimStats memtrim.Stats
	f.cfg.MetricStats = append(f.cfg.MetricStats, &trimStats)
	srv, err := gateway.New(f.cfg, log)
	if err != nil {
		return err
	}
	gw.Store(srv)
	log.Info("wsgate listening", "addr", srv.Addr().String(), "version", version,
		"max_connections_by_rlimit", nofile, "echo", f.cfg.Echo)
	if f.cfg.Demo {
		log.Info("demo chat page", "url", "http://"+srv.Addr().String()+"/")
	}
	if f.memoryTrim > 0 {
		trimDone := make(chan struct{})
		trimCtx, stopTrim := context.WithCancel(ctx)
		go func() {
			defer close(trimDone)
			memtrim.Run(trimCtx, memtrim.Config{Interval: f.memoryTrim, Log: log, Stats: &trimStats})
		}()
		defer func() { stopTrim(); <-trimDone }()
	}
	if apiLn != nil {
		apiSrv := apiServer(api.New(f.apiKey, srv.APIBackend(), log), apiTimeouts)
		go serveHTTP(apiSrv, apiLn, "api listener", log)
		defer func() {
			// Let API calls in flight finish (their answers say what
			// happened to their publications) rather than cutting them.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = apiSrv.Shutdown(ctx)
		}()
	}
	return srv.Serve(ctx)
}

// reloadOnHangup re-reads the JWKS file on every SIGHUP until ctx ends
// (key rotation: add the new key, reload, issue with it, later remove the
// old key and reload again). It catches SIGHUP from the start even with
// nothing to reload, since the signal's default action would end the
// gateway without a drain. Once ctx ends (the drain) SIGHUP is still
// caught, and ignored, until the returned stop is called; stop waits for a
// reload in progress.
func reloadOnHangup(ctx context.Context, a *auth.Authenticator, jwksFile string, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx) // also ended by stop, on an early return
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadKeys(a, jwksFile, log)
			}
		}
	}()
	return func() { cancel(); <-done; signal.Stop(hup) }
}

// reloadKeys reloads the JWKS file and logs the outcome; a failed reload
// keeps the keys in use, so a half-written file cannot lock every client
// out. --jwt-secret and --jwt-public-key are read once, at the start.
func reloadKeys(a *auth.Authenticator, jwksFile string, log *slog.Logger) {
	if a == nil || jwksFile == "" {
		log.Warn("SIGHUP: no --jwks-file to reload; other keys change with a restart")
		return
	}
	if err := a.Reload(); err != nil {
		log.Error("SIGHUP: keys not reloaded, the previous keys stay in use", "err", err)
		return
	}
	log.Info("SIGHUP: keys reloaded", "jwks_file", jwksFile)
}

// listenOptional binds addr for the flag that names it ("" binds nothing).
func listenOptional(flag, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	return ln, nil
}

// closeAll closes the listeners that are not nil.
func closeAll(lns ...net.Listener) {
	for _, ln := range lns {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// httpTimeouts bound how long a connection to an HTTP listener may hold
// a goroutine without sending what it owes.
type httpTimeouts struct {
	header time.Duration // a request's header, from its first byte
	read   time.Duration // the whole request, header and body, from its first byte
	idle   time.Duration // a keep-alive connection waiting for its next request
}

// apiTimeouts are the API listener's. net/http clears the read deadline
// once the body has been read, so read bounds only the upload: the
// handler's 10 s bound on its Backend calls (api.callTimeout) starts
// after it, and a publish is never cut short by a slow upload. 15 s lets
// a 1 MiB body through at 70 KB/s.
var apiTimeouts = httpTimeouts{header: 5 * time.Second, read: 15 * time.Second, idle: 60 * time.Second}

// apiServer is the API listener's server (tests give it short timeouts).
// Without read and idle bounds, a peer that sends half a body, or one
// request and then nothing, would hold its connection and goroutine for
// good — even after a 401.
func apiServer(h http.Handler, t httpTimeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.header, ReadTimeout: t.read, IdleTimeout: t.idle}
}

// serveHTTP serves hs on ln until hs is closed or shut down.
func serveHTTP(hs *http.Server, ln net.Listener, name string, log *slog.Logger) {
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error(name, "err", err)
	}
}

// raiseNofile lifts the soft open-files limit to the hard one (each
// connection is one fd) and returns how many connections it allows.
func raiseNofile(log *slog.Logger) uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("read RLIMIT_NOFILE", "err", err)
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("raise RLIMIT_NOFILE", "err", err)
		}
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	const reserved = 32 // listener, epoll fds, logs, debug listener
	if lim.Cur < reserved {
		return 0
	}
	return lim.Cur - reserved
}

// livenessTimeout bounds /healthz: an event loop that cannot run a no-op
// within it is stuck (a busy loop answers in microseconds).
const livenessTimeout = 2 * time.Second

// brokerConnecting is what /readyz and /metrics answer before the gateway
// exists: its broker is still connecting (Redis unreachable at start).
const brokerConnecting = "not ready: broker connecting"

// debugServer serves pprof, the metrics, liveness (/healthz) and readiness
// (/readyz) on their own listener. It serves before the gateway exists
// (gw still nil: the broker is connecting): /healthz then answers 200, since
// the process runs and restarting it would not reach Redis sooner, and
// /readyz and /metrics 503.
func debugServer(gw *atomic.Pointer[gateway.Server]) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		srv := gw.Load()
		if srv == nil {
			http.Error(w, brokerConnecting, http.StatusServiceUnavailable)
			return
		}
		if !srv.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if srv := gw.Load(); srv != nil {
			ctx, cancel := context.WithTimeout(r.Context(), livenessTimeout)
			defer cancel()
			if err := srv.Alive(ctx); err != nil {
				http.Error(w, "not alive: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		srv := gw.Load()
		if srv == nil {
			http.Error(w, brokerConnecting, http.StatusServiceUnavailable)
			return
		}
		srv.MetricsHandler().ServeHTTP(w, r)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// minPresenceTTL is the shortest --presence-ttl: members are refreshed
// every TTL/3 with a Redis round trip (bounded by --redis-timeout, 5 s by
// default), so a shorter TTL lets a slow round trip expire live members,
// and below 1 ms (Redis's unit) every member expires as it joins.
const minPresenceTTL = time.Second

// defaultJWTLeeway covers the skew of hosts that keep time with NTP (well
// under a second) plus the rounding of iat to whole seconds, with room for
// a VM whose clock drifted, while an expired token stays usable for no
// more than a few seconds.
const defaultJWTLeeway = 5 * time.Second

// check refuses the serve-only settings gateway.Config.Validate does not
// see, naming the flag.
func (f *serveFlags) check() error {
	switch {
	case f.presenceTTL < minPresenceTTL:
		return fmt.Errorf("--presence-ttl %v: want at least %v (members are refreshed every TTL/3 through Redis)",
			f.presenceTTL, minPresenceTTL)
	case f.auth.Leeway < 0 || f.auth.Leeway > auth.MaxLeeway:
		return fmt.Errorf("--jwt-leeway %v: want 0 to %v (it also lets expired tokens in for that long)",
			f.auth.Leeway, auth.MaxLeeway)
	case f.apiListen != "" && f.apiKey == "":
		return errors.New("--api-listen needs --api-key (or WSGATE_API_KEY)")
	case f.broker == "redis":
		if err := redisbroker.CheckURL(f.redis.URL); err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
	}
	return nil
}

// configure builds the authenticator.
func (f *serveFlags) configure() error {
	if f.jwtSecret == "" && f.jwtPublicKey == "" && f.auth.JWKSFile == "" && f.auth.HookURL == "" {
		return nil // no authentication: every connection is anonymous
	}
	f.auth.HMACSecret = []byte(f.jwtSecret)
	if f.jwtPublicKey != "" {
		pem, err := os.ReadFile(f.jwtPublicKey)
		if err != nil {
			return fmt.Errorf("--jwt-public-key: %w", err)
		}
		f.auth.PublicKeyPEM = pem
	}
	a, err := auth.New(f.auth)
	if err != nil {
		return fmt.Errorf("authentication: %w", err)
	}
	f.cfg.Auth = a
	return nil
}
