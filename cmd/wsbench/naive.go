package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os/signal"
	"syscall"

	"github.com/wsgate/wsgate/bench/naive"
)

// naiveReady is naive's one stdout line, printed once it accepts
// connections, so a harness can start it on port 0 and learn the address.
type naiveReady struct {
	Listen      string `json:"listen"`
	DebugListen string `json:"debug_listen,omitempty"`
}

// naiveCmd runs the naive reference server (gorilla/websocket, two
// goroutines per connection) until SIGINT or SIGTERM, then closes every
// connection with 1001 and exits 0.
func naiveCmd(e env, args []string) int {
	cfg, ok, code := naiveFlags(e, args)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serveNaive(ctx, e, cfg)
}

// naiveFlags parses the command line; !ok means exit with code.
func naiveFlags(e env, args []string) (cfg naive.Config, ok bool, code int) {
	fs := flag.NewFlagSet("naive", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg = naive.DefaultConfig()
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP address for WebSocket clients (/ws, /echo)")
	fs.StringVar(&cfg.DebugListen, "debug-listen", "", "address for /metrics and /debug/pprof/ (off when empty)")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest incoming message; larger closes with 1009")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "ping every connection this often")
	fs.DurationVar(&cfg.PongWait, "pong-wait", cfg.PongWait, "drop a connection with no pong for this long")
	fs.DurationVar(&cfg.WriteWait, "write-wait", cfg.WriteWait, "deadline of every write; slower clients are dropped")
	fs.IntVar(&cfg.SendBuffer, "send-buffer", cfg.SendBuffer, "messages queued per connection before it is dropped (4008)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, false, 0
		}
		return cfg, false, 2
	}
	return cfg, true, 0
}

// serveNaive runs the server until ctx ends.
func serveNaive(ctx context.Context, e env, cfg naive.Config) int {
	// Each connection is a socket: lift the soft limit before accepting.
	if limit, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	} else {
		e.log.Info("open-file limit", "nofile", limit)
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
