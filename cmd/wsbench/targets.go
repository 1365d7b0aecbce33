package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"

	"github.com/wsgate/wsgate/bench/centrifugo"
	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/server"
)

// What differs between the designs once they run: the protocol their
// clients speak, how the harness publishes, and the names of what their
// /metrics report. wsgate and naive share everything; Centrifugo's pieces
// come from bench/centrifugo.

// dialect returns the client protocol of design.
func dialect(design string) drive.Dialect {
	if design == results.Centrifugo {
		return centrifugo.Dialect{}
	}
	return drive.Wsgate{}
}

// dialPublisher opens design's publishing path: a client connection for
// wsgate and naive, the HTTP API (on the debug listener) for Centrifugo.
// dataBytes 0 means the designs' smallest stamped payload.
func (b *bench) dialPublisher(ctx context.Context, design string, p *server.Process, dataBytes int) (drive.Publisher, error) {
	if design == results.Centrifugo {
		return centrifugo.NewPublisher(p.DebugAddr, b.apiKey, dataBytes), nil
	}
	return drive.DialPublisher(ctx, p.Addr, dataBytes)
}

// connsOpen reads the connections a server still holds from its metrics.
func connsOpen(design string, m map[string]float64) float64 {
	if design == results.Centrifugo {
		return centrifugo.Clients(m)
	}
	return m["wsgate_conns_open"]
}

// slowClosed counts, from two scrapes of design's metrics, the
// connections it closed for being slow or not answering pings.
func slowClosed(design string, before, after map[string]float64) int64 {
	if design == results.Centrifugo {
		return centrifugo.ServerDisconnects(after) - centrifugo.ServerDisconnects(before)
	}
	return int64(after["wsgate_slow_consumers_total"] - before["wsgate_slow_consumers_total"] +
		after["wsgate_pong_timeouts_total"] - before["wsgate_pong_timeouts_total"])
}

// setupCentrifugo finds or installs the Centrifugo binary and prepares
// its configuration directory. When it cannot, the run goes on without
// Centrifugo and says why in its problems.
func (b *bench) setupCentrifugo(ctx context.Context) {
	if !slices.Contains(b.designs, results.Centrifugo) {
		return
	}
	var err error
	if b.flags.broker != "memory" {
		// Its Redis engine would be a comparison of its own, not set up here.
		err = fmt.Errorf("only --broker memory is set up for it")
	}
	if err == nil {
		err = b.findCentrifugo(ctx)
	}
	if err == nil {
		b.tmpDir, err = os.MkdirTemp("", "wsbench-centrifugo-")
	}
	if err == nil {
		b.apiKey, err = randomKey()
	}
	if err != nil {
		b.run.Problem("centrifugo: %v; the run goes on without it", err)
		b.designs = slices.DeleteFunc(b.designs, func(d string) bool { return d == results.Centrifugo })
	}
}

// findCentrifugo sets b.centrifugo: --centrifugo-bin, else the pinned
// release from the cache, installed there first when missing.
func (b *bench) findCentrifugo(ctx context.Context) error {
	if b.flags.centrifugoBin != "" {
		if _, err := os.Stat(b.flags.centrifugoBin); err != nil {
			return fmt.Errorf("--centrifugo-bin: %w", err)
		}
		b.centrifugo = b.flags.centrifugoBin
		return nil
	}
	cache, err := centrifugo.CacheDir()
	if err != nil {
		return err
	}
	if bin, ok := centrifugo.Installed(ctx, cache); ok {
		b.centrifugo = bin
		return nil
	}
	b.bar.Phase(fmt.Sprintf("installing Centrifugo %s into %s (go install: minutes, once)", centrifugo.Version, cache), 0)
	b.centrifugo, err = centrifugo.Install(ctx, cache)
	return err
}

// centrifugoSpec writes the configuration file and returns how to start
// Centrifugo with it.
func (b *bench) centrifugoSpec() (server.Spec, error) {
	path, err := centrifugo.Config{PingInterval: b.flags.pingInterval, APIKey: b.apiKey}.WriteFile(b.tmpDir)
	if err != nil {
		return server.Spec{}, err
	}
	return centrifugo.Spec(b.centrifugo, path), nil
}

func randomKey() (string, error) {
	k := make([]byte, 16)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("api key: %w", err)
	}
	return hex.EncodeToString(k), nil
}
