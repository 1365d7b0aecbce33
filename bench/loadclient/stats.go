package loadclient

import (
	"maps"
	"math"
	"slices"
	"time"
)

// Stats is a snapshot of a pool.
type Stats struct {
	Conns      int    // connections requested
	Connected  int    // upgraded during Dial
	Failed     int    // dials that failed (or were aborted) for good
	Redials    int    // failed dials started again (Config.Redials)
	FirstError string // text of the first dial failure

	DialDuration time.Duration // first connect start → last dial ended
	ConnectRate  float64       // Connected / DialDuration, per second

	// Handshake latency, connect start → 101 parsed, over upgraded conns.
	HandshakeP50, HandshakeP90, HandshakeP99, HandshakeMax time.Duration

	Open   int // upgraded and not yet ended
	Closed int // upgraded connections that ended (not counting Pool.Close)
	// Closes counts ended connections by code: the server's close frame
	// code (also when it answers Conn.Close), 1005 for a close frame
	// without a code, 1006 when TCP closed (or the close linger expired)
	// without one, 1002/1009 when the server broke the protocol.
	Closes map[int]int

	ProtocolErrors     int
	FirstProtocolError string

	MessagesIn  uint64 // complete messages received
	BytesIn     uint64 // bytes read from the sockets: frames on the wire (and 101 responses)
	Deflated    uint64 // upgrades where the server accepted permessage-deflate
	MessagesOut uint64 // frames queued by Send
	PingsIn     uint64 // server pings received (each answered with a pong)
}

// Stats returns a snapshot; it may be called at any time.
func (p *Pool) Stats() Stats {
	return p.stats(true)
}

// Counts is Stats without the handshake percentiles, which sort every
// latency: cheap enough to call several times a second on a large pool.
func (p *Pool) Counts() Stats {
	return p.stats(false)
}

func (p *Pool) stats(percentiles bool) Stats {
	p.mu.Lock()
	st := p.st
	var lat []time.Duration
	if percentiles {
		lat = slices.Clone(st.latencies)
	}
	closes := maps.Clone(st.closes)
	p.mu.Unlock()

	s := Stats{
		Conns:              len(p.conns),
		Connected:          st.connected,
		Failed:             st.failed,
		Redials:            st.redials,
		FirstError:         st.firstError,
		Open:               st.connected - st.closed,
		Closed:             st.closed,
		Closes:             closes,
		ProtocolErrors:     st.protoErrs,
		FirstProtocolError: st.firstProto,
		MessagesIn:         p.messagesIn.Load(),
		BytesIn:            p.bytesIn.Load(),
		Deflated:           p.deflated.Load(),
		MessagesOut:        p.messagesOut.Load(),
		PingsIn:            p.pingsIn.Load(),
	}
	if !st.end.IsZero() {
		s.DialDuration = st.end.Sub(st.start)
	}
	if s.DialDuration > 0 {
		s.ConnectRate = float64(st.connected) / s.DialDuration.Seconds()
	}
	if percentiles {
		q := Percentiles(lat, 50, 90, 99, 100)
		s.HandshakeP50, s.HandshakeP90, s.HandshakeP99, s.HandshakeMax = q[0], q[1], q[2], q[3]
	}
	return s
}

// Percentiles returns the nearest-rank percentiles ps (0–100; values
// outside are clamped, 0 is the minimum and 100 the maximum) of samples,
// which it does not modify. With no samples every result is 0.
func Percentiles(samples []time.Duration, ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if len(samples) == 0 {
		return out
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	for i, p := range ps {
		if math.IsNaN(p) {
			p = 0
		}
		p = min(max(p, 0), 100)
		// p*n first: p/100 is inexact (0.07*100 > 7) and would skip a rank.
		rank := int(math.Ceil(p * float64(len(s)) / 100))
		out[i] = s[min(max(rank-1, 0), len(s)-1)]
	}
	return out
}

// Summary is Stats in the shape wsbench prints: snake_case JSON,
// milliseconds as floats.
type Summary struct {
	Conns          int     `json:"conns"`
	Connected      int     `json:"connected"`
	Failed         int     `json:"failed"`
	FirstError     string  `json:"first_error"`
	DialSeconds    float64 `json:"dial_seconds"`
	ConnectRate    float64 `json:"connect_rate"`
	HandshakeP50Ms float64 `json:"handshake_p50_ms"`
	HandshakeP90Ms float64 `json:"handshake_p90_ms"`
	HandshakeP99Ms float64 `json:"handshake_p99_ms"`
	HandshakeMaxMs float64 `json:"handshake_max_ms"`
	Open           int     `json:"open"`
	Closed         int     `json:"closed"`
	ProtocolErrors int     `json:"protocol_errors"`
	MessagesIn     uint64  `json:"messages_in"`
	MessagesOut    uint64  `json:"messages_out"`
	PingsIn        uint64  `json:"pings_in"`
}

// Summary converts s for printing.
func (s Stats) Summary() Summary {
	return Summary{
		Conns:          s.Conns,
		Connected:      s.Connected,
		Failed:         s.Failed,
		FirstError:     s.FirstError,
		DialSeconds:    round3(s.DialDuration.Seconds()),
		ConnectRate:    math.Round(s.ConnectRate),
		HandshakeP50Ms: ms(s.HandshakeP50),
		HandshakeP90Ms: ms(s.HandshakeP90),
		HandshakeP99Ms: ms(s.HandshakeP99),
		HandshakeMaxMs: ms(s.HandshakeMax),
		Open:           s.Open,
		Closed:         s.Closed,
		ProtocolErrors: s.ProtocolErrors,
		MessagesIn:     s.MessagesIn,
		MessagesOut:    s.MessagesOut,
		PingsIn:        s.PingsIn,
	}
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
