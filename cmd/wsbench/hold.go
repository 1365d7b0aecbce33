package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/loadclient"
)

// holdResult is hold's second output line: how held connections ended.
type holdResult struct {
	Closes map[int]int `json:"closes"`
	Closed int         `json:"closed"`
	Open   int         `json:"open"`
	Reason string      `json:"reason"`
}

// hold dials --conns connections, prints one JSON line of dial stats,
// holds them until stdin reaches EOF (not watched when it is /dev/null),
// SIGINT/SIGTERM or --duration, then prints one JSON line with the close
// codes seen meanwhile.
func hold(e env, args []string) int {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var cfg loadclient.Config
	var sources string
	var duration time.Duration
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server address (IPv4:port)")
	fs.StringVar(&cfg.Path, "path", "/echo", "upgrade request path")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to open")
	fs.IntVar(&cfg.DialsInFlight, "dials-in-flight", 0, "concurrent connects+handshakes (0: all at once)")
	fs.StringVar(&cfg.Subprotocol, "subprotocol", "", "Sec-WebSocket-Protocol to offer")
	fs.StringVar(&cfg.Origin, "origin", "", "Origin header to send")
	fs.StringVar(&sources, "source-ips", "", "comma-separated source IPv4 addresses (default 127.0.0.1-127.0.0.8)")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", loadclient.DefaultHandshakeTimeout, "connect start to 101 deadline")
	fs.DurationVar(&duration, "duration", 0, "hold this long (0: until stdin EOF or a signal)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if sources != "" {
		cfg.SourceIPs = strings.Split(sources, ",")
	}
	if _, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	pool, err := loadclient.Dial(ctx, cfg)
	if err != nil {
		e.log.Error("hold", "err", err)
		return 2
	}
	defer pool.Close()
	enc := json.NewEncoder(e.stdout)
	if err := enc.Encode(pool.Stats().Summary()); err != nil {
		e.log.Error("write stats", "err", err)
		return 1
	}

	reason := waitHold(ctx, e.stdin, duration)
	st := pool.Stats()
	if err := enc.Encode(holdResult{Closes: st.Closes, Closed: st.Closed, Open: st.Open, Reason: reason}); err != nil {
		e.log.Error("write closes", "err", err)
		return 1
	}
	return 0
}

// waitHold blocks until ctx ends, stdin (unless nil) reaches EOF or d
// elapses (d > 0) and says which. The stdin reader goroutine ends with the
// process.
func waitHold(ctx context.Context, stdin io.Reader, d time.Duration) string {
	eof := make(chan struct{})
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin) // a read error counts as EOF
			close(eof)
		}()
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return "signal"
	case <-eof:
		return "stdin closed"
	case <-timeout:
		return "duration elapsed"
	}
}
