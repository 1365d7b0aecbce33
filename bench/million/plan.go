package million

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
)

// PlanConfig is what the layout of a run depends on.
type PlanConfig struct {
	// Conns is the number of connections to hold.
	Conns int
	// FDCap is the open-file limit of every process (RLIMIT_NOFILE hard).
	FDCap int
	// ServerReserve and ClientReserve are the fds a process needs besides
	// its connections: listeners, epoll and event fds, Redis connections,
	// pipes (default 100 each).
	ServerReserve, ClientReserve int
	// PerServer is the mean number of connections per server; 0 picks the
	// largest mean whose busiest server stays under its cap (see
	// spreadSigmas).
	PerServer int
	// LocalPorts is the size of the ephemeral port range
	// (net.ipv4.ip_local_port_range).
	LocalPorts int
	// PortFill is the share of LocalPorts one source address may use
	// towards the one server port (default 0.25). connect(2) tries ports of
	// one parity first: past half the range every connect scans the whole
	// used half before it finds a port (measured here: 480 µs of system
	// time per connect with 19,000 connections from one source, 100 µs
	// with 6,300 from each of three).
	PortFill float64
	// FirstSource is the first loopback source address (default
	// 127.0.0.10); more are taken in order.
	FirstSource netip.Addr
}

// Plan is how many processes and source addresses hold Conns connections.
type Plan struct {
	Conns int
	// Servers share one port with SO_REUSEPORT: the kernel spreads the
	// connections over them by a hash of the 4-tuple, so each gets about
	// MeanPerServer, give or take √MeanPerServer. ServerCap is what each
	// may hold (its --max-conns).
	Servers       int
	ServerCap     int
	MeanPerServer float64
	// Clients are the load-client processes, each with its own share and
	// source addresses.
	Clients []ClientShare
	// Sources is the number of source addresses over all clients.
	Sources int
}

// ClientShare is one load-client process's part of a plan.
type ClientShare struct {
	Conns   int      `json:"conns"`
	Sources []string `json:"sources"`
}

// spreadSigmas is the margin between a server's mean load and its cap, in
// standard deviations of the kernel's spreading (binomial, σ ≈ √mean): at
// 5σ, the chance that any of ~50 servers overflows is ~1e-5.
const spreadSigmas = 5

// Defaults of PlanConfig's zero fields.
const (
	DefaultReserve  = 100
	DefaultPortFill = 0.25
)

// DefaultFirstSource is the first source address clients bind to.
var DefaultFirstSource = netip.AddrFrom4([4]byte{127, 0, 0, 10})

// NewPlan lays out c.Conns connections.
func NewPlan(c PlanConfig) (Plan, error) {
	if c.ServerReserve == 0 {
		c.ServerReserve = DefaultReserve
	}
	if c.ClientReserve == 0 {
		c.ClientReserve = DefaultReserve
	}
	if c.PortFill == 0 {
		c.PortFill = DefaultPortFill
	}
	if !c.FirstSource.IsValid() {
		c.FirstSource = DefaultFirstSource
	}
	serverCap, clientCap := c.FDCap-c.ServerReserve, c.FDCap-c.ClientReserve
	perSource := int(float64(c.LocalPorts) * c.PortFill)
	switch {
	case c.Conns < 1:
		return Plan{}, errors.New("plan: connections must be positive")
	case serverCap < 1 || clientCap < 1:
		return Plan{}, fmt.Errorf("plan: an open-file cap of %d leaves no room for connections", c.FDCap)
	case perSource < 1 || c.PortFill > 1:
		return Plan{}, fmt.Errorf("plan: %d local ports at fill %.2f give no connection per source address", c.LocalPorts, c.PortFill)
	case !c.FirstSource.Is4() || !c.FirstSource.IsLoopback():
		return Plan{}, fmt.Errorf("plan: first source %s is not an IPv4 loopback address", c.FirstSource)
	}
	mean := c.PerServer
	if mean == 0 {
		mean = maxMean(serverCap)
	}
	if busiest := float64(mean) + spreadSigmas*math.Sqrt(float64(mean)); mean < 1 || busiest > float64(serverCap) {
		return Plan{}, fmt.Errorf("plan: %d connections per server on average puts the busiest near %.0f, over its cap of %d (open files %d - %d reserved)",
			mean, busiest, serverCap, c.FDCap, c.ServerReserve)
	}
	p := Plan{Conns: c.Conns, ServerCap: serverCap}
	p.Servers = ceilDiv(c.Conns, mean)
	p.MeanPerServer = float64(c.Conns) / float64(p.Servers)

	clients := ceilDiv(c.Conns, clientCap)
	next := c.FirstSource
	for i := range clients {
		share := c.Conns / clients
		if i < c.Conns%clients {
			share++
		}
		cs := ClientShare{Conns: share}
		for range ceilDiv(share, perSource) {
			var err error
			if next, err = usableSource(next); err != nil {
				return Plan{}, err
			}
			cs.Sources = append(cs.Sources, next.String())
			next = next.Next()
		}
		p.Sources += len(cs.Sources)
		p.Clients = append(p.Clients, cs)
	}
	return p, nil
}

// maxMean is the largest mean m with m + spreadSigmas·√m ≤ capacity.
func maxMean(capacity int) int {
	s := (-spreadSigmas + math.Sqrt(spreadSigmas*spreadSigmas+4*float64(capacity))) / 2
	return int(s * s)
}

// usableSource returns a, or the next address after it that does not end
// in .0 or .255, failing past 127.255.255.254.
func usableSource(a netip.Addr) (netip.Addr, error) {
	for a.IsValid() && a.IsLoopback() {
		if last := a.As4()[3]; last != 0 && last != 255 {
			return a, nil
		}
		a = a.Next()
	}
	return netip.Addr{}, errors.New("plan: out of loopback source addresses")
}

// MaxPerClient is the largest client share.
func (p Plan) MaxPerClient() int {
	m := 0
	for _, c := range p.Clients {
		m = max(m, c.Conns)
	}
	return m
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
