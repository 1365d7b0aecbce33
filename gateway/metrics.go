package gateway

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics are the server's counters and gauges. Every bound the server
// enforces has a counter here, so crossing it is visible.
type Metrics struct {
	ConnsAccepted     atomic.Int64 // TCP connections accepted
	ConnsOpen         atomic.Int64 // gauge: registered connections (any state)
	ConnsUpgraded     atomic.Int64 // successful WebSocket upgrades
	HandshakesActive  atomic.Int64 // gauge: handshakes in progress
	HandshakesBusy    atomic.Int64 // refused with 503: too many handshakes
	HandshakesFailed  atomic.Int64 // rejected (bad request, origin, hook, too large)
	HandshakeTimeouts atomic.Int64 // closed at the handshake deadline
	ProtocolErrors    atomic.Int64 // closed with 1002/1007/1009 for a client error
	SlowConsumers     atomic.Int64 // closed with 4008: queue over its limit
	PongTimeouts      atomic.Int64 // closed: nothing received after a ping
	MessagesIn        atomic.Int64 // complete messages received
	FramesOut         atomic.Int64 // frames queued for writing
	Writevs           atomic.Int64 // writev(2) calls that wrote something
	AcceptErrors      atomic.Int64 // accept4 failures (EMFILE, ...)
	ConnsRefused      atomic.Int64 // over --max-conns, per-IP limit or --accept-rate
	RateLimited       atomic.Int64 // commands refused: over the command rate
	TokenExpired      atomic.Int64 // closed with 4004: no refresh in time
}

// WriteText writes the metrics in the Prometheus text format.
func (m *Metrics) WriteText(w io.Writer) error {
	for _, v := range []struct {
		name string
		kind string
		val  *atomic.Int64
	}{
		{"wsgate_conns_accepted_total", "counter", &m.ConnsAccepted},
		{"wsgate_conns_open", "gauge", &m.ConnsOpen},
		{"wsgate_conns_upgraded_total", "counter", &m.ConnsUpgraded},
		{"wsgate_handshakes_active", "gauge", &m.HandshakesActive},
		{"wsgate_handshakes_busy_total", "counter", &m.HandshakesBusy},
		{"wsgate_handshakes_failed_total", "counter", &m.HandshakesFailed},
		{"wsgate_handshake_timeouts_total", "counter", &m.HandshakeTimeouts},
		{"wsgate_protocol_errors_total", "counter", &m.ProtocolErrors},
		{"wsgate_slow_consumers_total", "counter", &m.SlowConsumers},
		{"wsgate_pong_timeouts_total", "counter", &m.PongTimeouts},
		{"wsgate_messages_in_total", "counter", &m.MessagesIn},
		{"wsgate_frames_out_total", "counter", &m.FramesOut},
		{"wsgate_writev_total", "counter", &m.Writevs},
		{"wsgate_accept_errors_total", "counter", &m.AcceptErrors},
		{"wsgate_conns_refused_total", "counter", &m.ConnsRefused},
		{"wsgate_rate_limited_total", "counter", &m.RateLimited},
		{"wsgate_token_expired_total", "counter", &m.TokenExpired},
	} {
		if _, err := fmt.Fprintf(w, "# TYPE %s %s\n%s %d\n", v.name, v.kind, v.name, v.val.Load()); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	return nil
}
