package centrifugo

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/server"
)

// Config is what the harness decides about a Centrifugo run; everything
// else is Centrifugo's default. bench/README.md ("Centrifugo") explains
// every setting.
type Config struct {
	// PingInterval is client.ping_interval: the same as the other servers'.
	PingInterval time.Duration
	// APIKey authorizes the HTTP API (http_api.key).
	APIKey string
}

// defaultPongTimeout is Centrifugo's client.pong_timeout; it must stay
// below the ping interval.
const defaultPongTimeout = 8 * time.Second

// shutdownTimeout bounds the graceful shutdown, within the harness's
// stop grace of 20 s.
const shutdownTimeout = 10 * time.Second

// File returns the configuration file's contents.
func (c Config) File() ([]byte, error) {
	if c.PingInterval <= 0 {
		return nil, fmt.Errorf("centrifugo: ping interval %v must be positive", c.PingInterval)
	}
	if c.APIKey == "" {
		return nil, fmt.Errorf("centrifugo: an API key is required")
	}
	pong := min(defaultPongTimeout, c.PingInterval/2)
	cfg := obj{
		"log": obj{"level": "warn"},
		// Otherwise it reports anonymous usage statistics over the
		// network, which a benchmark host does not reach.
		"usage_stats": obj{"disabled": true},
		"engine":      obj{"type": "memory"},
		"http_api":    obj{"key": c.APIKey},
		"prometheus":  obj{"enabled": true},
		"debug":       obj{"enabled": true},
		"client": obj{
			"allow_anonymous_connect_without_token": true,
			"ping_interval":                         c.PingInterval.String(),
			"pong_timeout":                          pong.String(),
		},
		"channel": obj{"namespaces": []obj{{
			"name":                          Namespace,
			"allow_subscribe_for_anonymous": true,
			"allow_subscribe_for_client":    true,
			// Off unless a scenario uses them (none does).
			"history_size": 0,
			"presence":     false,
			"join_leave":   false,
		}}},
		"shutdown": obj{"timeout": shutdownTimeout.String()},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

type obj = map[string]any

// WriteFile writes the configuration into dir and returns its path.
func (c Config) WriteFile(dir string) (string, error) {
	b, err := c.File()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "centrifugo.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("centrifugo: write config: %w", err)
	}
	return path, nil
}

// Spec is how the harness starts bin with the configuration file at
// configPath: clients on the listen address, the HTTP API, /metrics and
// /debug/pprof on the internal ("debug") address.
func Spec(bin, configPath string) server.Spec {
	return server.Spec{
		Name:       results.Centrifugo,
		Bin:        bin,
		Args:       []string{"--config", configPath},
		ListenArgs: ListenArgs,
		Debug:      true,
	}
}

// ListenArgs tells Centrifugo its two addresses with its own flags.
func ListenArgs(listen, internal string) []string {
	host, port, _ := net.SplitHostPort(listen)
	args := []string{"--http_server.address", host, "--http_server.port", port}
	if internal != "" {
		ihost, iport, _ := net.SplitHostPort(internal)
		args = append(args, "--http_server.internal_address", ihost, "--http_server.internal_port", iport)
	}
	return args
}
