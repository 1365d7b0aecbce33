package naive

import (
	"errors"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/gateway/broker"
)

// Defaults, taken from gorilla/websocket's chat example where it has one
// (write wait, ping period, pong wait, send buffer) and from wsgate where the
// protocol fixes it (message size), so both servers are held to the same
// bounds.
const (
	DefaultListen          = "127.0.0.1:8081"
	DefaultMaxMessageBytes = 64 << 10
	DefaultPingInterval    = 25 * time.Second
	DefaultPongWait        = 35 * time.Second
	DefaultWriteWait       = 10 * time.Second
	DefaultSendBuffer      = 256

	// BufferSize is gorilla's per-connection read and write buffer size:
	// the "two 4 KiB buffers per socket" of the design being measured.
	BufferSize = 4096
)

// Config holds the naive server's settings. Zero fields take the defaults
// above; Broker nil means the embedded in-process broker.
type Config struct {
	// Listen is the TCP address for WebSocket clients (/ws and /echo).
	Listen string
	// ReusePort sets SO_REUSEPORT on the listener, so several processes
	// share one port (each holds at most one process's open files).
	ReusePort bool
	// DebugListen, when set, serves /metrics and /debug/pprof/.
	DebugListen string
	// Broker carries publications (nil: gateway/broker/memory).
	Broker broker.Broker
	// MaxMessageBytes bounds an incoming message; larger closes with 1009.
	MaxMessageBytes int
	// PingInterval is how often the writer pings; PongWait is how long the
	// reader waits for the next pong before dropping the connection.
	PingInterval time.Duration
	PongWait     time.Duration
	// WriteWait bounds every write; a client that takes longer is dropped.
	WriteWait time.Duration
	// SendBuffer is the depth of each connection's send channel; a client
	// whose channel is full is closed as a slow consumer (4008).
	SendBuffer int
	// Compression accepts permessage-deflate offers the way a gorilla
	// user turns it on (Upgrader.EnableCompression); gorilla then
	// compresses every data message it writes to such a connection.
	Compression bool
	// CompressionMode is how publications reach compressing subscribers
	// (only with Compression; "" means CompressionPrepared).
	CompressionMode CompressionMode
}

// CompressionMode says how the hub hands a publication to gorilla, which
// decides where the deflate happens.
type CompressionMode string

const (
	// CompressionPrepared frames each publication once per encoding as a
	// websocket.PreparedMessage: gorilla compresses it once per message
	// and every compressing subscriber writes the same frame.
	CompressionPrepared CompressionMode = "prepared"
	// CompressionPerConnection hands every subscriber's writer the shared
	// encoded payload for conn.WriteMessage, as gorilla's chat example
	// writes: gorilla compresses it on each connection, one deflate per
	// subscriber per message. This is compression as most gorilla users
	// run it.
	CompressionPerConnection CompressionMode = "per-connection"
)

// ParseCompressionMode accepts the names of the modes ("" is prepared).
func ParseCompressionMode(s string) (CompressionMode, error) {
	switch m := CompressionMode(s); m {
	case "", CompressionPrepared:
		return CompressionPrepared, nil
	case CompressionPerConnection:
		return m, nil
	}
	return "", fmt.Errorf("naive: compression mode %q: want %s or %s", s, CompressionPrepared, CompressionPerConnection)
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Listen:          DefaultListen,
		MaxMessageBytes: DefaultMaxMessageBytes,
		PingInterval:    DefaultPingInterval,
		PongWait:        DefaultPongWait,
		WriteWait:       DefaultWriteWait,
		SendBuffer:      DefaultSendBuffer,
		CompressionMode: CompressionPrepared,
	}
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.PingInterval <= 0 {
		c.PingInterval = d.PingInterval
	}
	if c.PongWait <= 0 {
		c.PongWait = d.PongWait
	}
	if c.WriteWait <= 0 {
		c.WriteWait = d.WriteWait
	}
	if c.SendBuffer <= 0 {
		c.SendBuffer = d.SendBuffer
	}
	mode, err := ParseCompressionMode(string(c.CompressionMode))
	if err != nil {
		return c, err
	}
	c.CompressionMode = mode
	// A pong can only extend the read deadline if the ping that asks for it
	// goes out before the deadline passes.
	if c.PongWait <= c.PingInterval {
		return c, errors.New("naive: PongWait must be longer than PingInterval")
	}
	return c, nil
}
