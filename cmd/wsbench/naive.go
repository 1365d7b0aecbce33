package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsgate/wsgate/bench/naive"
	redisbroker "github.com/wsgate/wsgate/gateway/broker/redis"
)

// naiveReady is naive's one stdout line, printed once it accepts
// connections, so a harness can start it on port 0 and learn the address.
type naiveReady struct {
	Listen      string `json:"listen"`
	DebugListen string `json:"debug_listen,omitempty"`
}

// naiveOptions are naive's flags: the server's Config and the broker.
type naiveOptions struct {
	cfg      naive.Config
	broker   string // memory or redis
	redisURL string
}

// naiveCmd runs the naive reference server (gorilla/websocket, two
// goroutines per connection) until SIGINT or SIGTERM, then closes every
// connection with 1001 and exits 0.
func naiveCmd(e env, args []string) int {
	opts, ok, code := naiveFlags(e, args)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serveNaive(ctx, e, opts)
}

// naiveFlags parses the command line; !ok means exit with code.
func naiveFlags(e env, args []string) (opts naiveOptions, ok bool, code int) {
	fs := flag.NewFlagSet("naive", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	opts.cfg = naive.DefaultConfig()
	cfg := &opts.cfg
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP address for WebSocket clients (/ws, /echo)")
	fs.StringVar(&cfg.DebugListen, "debug-listen", "", "address for /metrics and /debug/pprof/ (off when empty)")
	fs.BoolVar(&cfg.ReusePort, "reuse-port", false, "set SO_REUSEPORT on the listener (several processes on one port)")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest incoming message; larger closes with 1009")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "ping every connection this often")
	fs.DurationVar(&cfg.PongWait, "pong-wait", cfg.PongWait, "drop a connection with no pong for this long")
	fs.DurationVar(&cfg.WriteWait, "write-wait", cfg.WriteWait, "deadline of every write; slower clients are dropped")
	fs.IntVar(&cfg.SendBuffer, "send-buffer", cfg.SendBuffer, "messages queued per connection before it is dropped (4008)")
	fs.BoolVar(&cfg.Compression, "compression", false, "accept permessage-deflate offers (gorilla's EnableCompression)")
	mode := fs.String("compression-mode", string(naive.CompressionPrepared),
		"with --compression, how publications are compressed: prepared (one PreparedMessage per publication, compressed once) "+
			"or per-connection (each writer calls WriteMessage with the shared payload and gorilla compresses it on that connection, "+
			"one deflate per subscriber per message, as gorilla's chat example writes)")
	// The same brokers as wsgate serve, so a comparison can include Redis.
	fs.StringVar(&opts.broker, "broker", "memory", "broker: memory (embedded) or redis")
	fs.StringVar(&opts.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis for --broker redis (as wsgate serve --redis-url)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, false, 0
		}
		return opts, false, 2
	}
	if opts.broker != "memory" && opts.broker != "redis" {
		fmt.Fprintf(e.stderr, "wsbench naive: --broker %q: want memory or redis\n", opts.broker)
		return opts, false, 2
	}
	m, err := naive.ParseCompressionMode(*mode)
	if err != nil {
		fmt.Fprintf(e.stderr, "wsbench naive: --compression-mode: %v\n", err)
		return opts, false, 2
	}
	if m != naive.CompressionPrepared && !cfg.Compression {
		// Without --compression nothing is compressed: a mode asked for
		// alone would silently measure a plain run.
		fmt.Fprintln(e.stderr, "wsbench naive: --compression-mode per-connection needs --compression")
		return opts, false, 2
	}
	cfg.CompressionMode = m
	return opts, true, 0
}

// serveNaive runs the server until ctx ends.
func serveNaive(ctx context.Context, e env, opts naiveOptions) int {
	// Each connection is a socket: lift the soft limit before accepting.
	if limit, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	} else {
		e.log.Info("open-file limit", "nofile", limit)
	}
	cfg := opts.cfg
	if opts.broker == "redis" {
		// Default history policy, like wsgate serve's defaults: both servers
		// make the broker do the same work per publication.
		b, err := redisbroker.New(redisbroker.Config{URL: opts.redisURL, Node: naiveNodeID(), Log: e.log})
		if err != nil {
			e.log.Error("naive: redis broker", "err", err)
			return 1
		}
		cfg.Broker = b // the server closes it
	}
	srv, err := naive.New(cfg, e.log)
	if err != nil {
		e.log.Error("naive", "err", err)
		return 1
	}
	ready := naiveReady{Listen: srv.Addr().String()}
	if a := srv.DebugAddr(); a != nil {
		ready.DebugListen = a.String()
	}
	if err := json.NewEncoder(e.stdout).Encode(ready); err != nil {
		e.log.Warn("write ready line", "err", err)
	}
	if err := srv.Serve(ctx); err != nil {
		e.log.Error("naive", "err", err)
		return 1
	}
	return 0
}

func naiveNodeID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return fmt.Sprintf("naive-%s-%d", host, os.Getpid())
}
