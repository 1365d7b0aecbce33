package loadclient

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Config describes a pool of client connections. Zero values take the
// defaults noted on each field.
type Config struct {
	// Addr is the server's IPv4 address and port, e.g. "127.0.0.1:8080".
	Addr string
	// Path is the request path of the upgrade, e.g. "/echo" (default "/").
	Path string
	// Conns is how many connections to open.
	Conns int
	// DialsInFlight bounds concurrent connects+handshakes; 0 starts all
	// connects at once (a storm).
	DialsInFlight int
	// DialRate, when positive, starts at most this many connects per
	// second (on top of DialsInFlight): a steady ramp instead of a storm.
	DialRate float64
	// TimerTick is the resolution of handshake timeouts and close
	// lingers (default: netpoll's, 100 ms). A coarser tick wakes the
	// process less often: many client processes on a few cores.
	TimerTick time.Duration
	// SourceIPs are the local IPv4 addresses connections are bound to,
	// round-robin (default 127.0.0.1 … 127.0.0.8).
	SourceIPs []string
	// Subprotocol, when set, is offered in Sec-WebSocket-Protocol and the
	// server must select it.
	Subprotocol string
	// Origin, when set, is sent as the Origin header.
	Origin string
	// Compression offers permessage-deflate (as browsers do:
	// "permessage-deflate; client_max_window_bits"); when the server
	// accepts, compressed messages are inflated before OnMessage. The
	// client itself sends uncompressed frames (allowed per message).
	Compression bool
	// HandshakeTimeout bounds connect start → 101 parsed (default 10 s,
	// enough for a few SYN retransmits when a storm overflows the backlog).
	HandshakeTimeout time.Duration
	// Redials is how many times a failed dial (connect error, handshake
	// timeout, server closing during the handshake) is started again, as
	// a reconnecting client would, while dialing goes on (default 0:
	// never). Each waits RedialDelay (default 1 s) plus up to as much
	// again of jitter, then a dial slot; Stats.Redials counts them.
	Redials     int
	RedialDelay time.Duration
	// MaxMessageBytes bounds an incoming message (default 16 MiB); a larger
	// one closes the connection with 1009.
	MaxMessageBytes int
	// MaxQueueBytes bounds the bytes queued by Send on one connection
	// (default 4 MiB); beyond it Send returns ErrQueueFull.
	MaxQueueBytes int
	// OnMessage is called on an event-loop goroutine for every complete
	// text or binary message. It must not block; payload is only valid
	// during the call. It may call Send.
	OnMessage func(c *Conn, op byte, payload []byte)
	// OnClose is called once when an upgraded connection ends (not on
	// Pool.Close), on an event-loop goroutine; see Stats.Closes for codes.
	OnClose func(c *Conn, code int)
	// OnOpen, when set, is called on an event-loop goroutine right after a
	// connection is upgraded, before any frame is read. It must not block;
	// it may call Send (a subscribe goes out in the same dispatch).
	OnOpen func(c *Conn)
	// ResetOnClose makes Pool.Close reset every connection (SO_LINGER 0:
	// an RST, no close handshake, no TIME_WAIT on either side) instead of
	// closing it: what a benchmark wants when it tears down a hundred
	// thousand connections and must leave no socket behind. Dials that
	// fail or are aborted are reset too.
	ResetOnClose bool
}

// Defaults for zero Config fields.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultRedialDelay      = time.Second
	DefaultMaxMessageBytes  = 16 << 20
	DefaultMaxQueueBytes    = 4 << 20
	defaultSourceIPs        = 8
)

// target is a validated Config turned into what the dialer needs.
type target struct {
	dst     unix.SockaddrInet4
	sources [][4]byte
	request requestTemplate
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = "/"
	}
	if len(c.SourceIPs) == 0 {
		for i := 1; i <= defaultSourceIPs; i++ {
			c.SourceIPs = append(c.SourceIPs, fmt.Sprintf("127.0.0.%d", i))
		}
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.RedialDelay <= 0 {
		c.RedialDelay = DefaultRedialDelay
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	return c
}

// resolve validates c (already defaulted) and prepares the dial target.
func (c Config) resolve() (target, error) {
	var t target
	if c.Conns < 0 || c.DialsInFlight < 0 {
		return t, errors.New("loadclient: conns and dials in flight must not be negative")
	}
	ap, err := netip.ParseAddrPort(c.Addr)
	if err != nil {
		return t, fmt.Errorf("loadclient: server address: %w", err)
	}
	if !ap.Addr().Unmap().Is4() {
		return t, fmt.Errorf("loadclient: server address %s: only IPv4 is supported", c.Addr)
	}
	t.dst = unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	for _, s := range c.SourceIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Unmap().Is4() {
			return t, fmt.Errorf("loadclient: source address %q is not IPv4", s)
		}
		t.sources = append(t.sources, ip.Unmap().As4())
	}
	// Header values are pasted into the request: refuse anything that
	// could end a header line early.
	for name, v := range map[string]string{"path": c.Path, "subprotocol": c.Subprotocol, "origin": c.Origin} {
		if strings.ContainsAny(v, "\r\n") {
			return t, fmt.Errorf("loadclient: %s contains a line break", name)
		}
	}
	if !strings.HasPrefix(c.Path, "/") {
		return t, fmt.Errorf("loadclient: path %q must start with /", c.Path)
	}
	t.request = newRequestTemplate(c.Addr, c.Path, c.Subprotocol, c.Origin, c.Compression)
	return t, nil
}
