package naive

import (
	"sync"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

// hub is the textbook channel table: one map under one RWMutex, and a
// publication is fanned out in whatever goroutine the broker delivers it on.
//
// Two locks, because the memory broker calls Deliver while holding its own
// shard lock: if Subscribe called the broker while holding mu, a publisher
// (broker lock → mu) and a subscriber (mu → broker lock) could deadlock.
// interest serializes the broker's Subscribe/Unsubscribe calls (so a
// channel's first-in / last-out declarations reach the broker in order) and
// is never taken by Deliver; mu guards the map only.
type hub struct {
	broker broker.Broker
	m      *metrics
	// perConn hands subscribers the encoded payload instead of a
	// PreparedMessage, so gorilla compresses it on every connection
	// (Config.CompressionMode per-connection, with Compression on).
	perConn bool

	interest sync.Mutex
	mu       sync.RWMutex
	channels map[string]map[*client]struct{}
}

func newHub(b broker.Broker, m *metrics, perConn bool) *hub {
	return &hub{broker: b, m: m, perConn: perConn, channels: map[string]map[*client]struct{}{}}
}

// subscribe adds c to channel; the first local subscriber subscribes this
// instance at the broker.
func (h *hub) subscribe(channel string, c *client) {
	h.interest.Lock()
	defer h.interest.Unlock()
	h.mu.Lock()
	subs := h.channels[channel]
	first := subs == nil
	if first {
		subs = map[*client]struct{}{}
		h.channels[channel] = subs
	}
	subs[c] = struct{}{}
	h.mu.Unlock()
	if first {
		h.broker.Subscribe(channel)
	}
}

// unsubscribe removes c from channel; the last one out unsubscribes this
// instance at the broker.
func (h *hub) unsubscribe(channel string, c *client) {
	h.interest.Lock()
	defer h.interest.Unlock()
	h.mu.Lock()
	subs := h.channels[channel]
	delete(subs, c)
	last := subs != nil && len(subs) == 0
	if last {
		delete(h.channels, channel)
	}
	h.mu.Unlock()
	if last {
		h.broker.Unsubscribe(channel)
	}
}

// subscribers returns how many local clients channel has (tests, metrics).
func (h *hub) subscribers(channel string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.channels[channel])
}

// Resync implements broker.Sink: the naive hub keeps no delivery
// position, so it has nothing to repair (a lapse loses what it missed, as
// gorilla's chat hub would).
func (h *hub) Resync(string) {}

// Deliver implements broker.Sink. It encodes the publication once per
// encoding (framed once as a PreparedMessage, or left as the payload every
// connection compresses for itself in per-connection mode) and offers it
// to every subscriber without blocking; a subscriber whose send channel is
// full is dropped, as in gorilla's chat hub. It never refuses a
// publication as a whole.
func (h *hub) Deliver(p *codec.Publication) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	subs := h.channels[string(p.Channel)] // no allocation: map index by string(bytes)
	var pushes [2]*outbound               // indexed by codec.Encoding, built on first use
	queued := 0
	for c := range subs {
		m := pushes[c.enc]
		if m == nil {
			if m = h.push(c.enc, p); m == nil {
				continue
			}
			pushes[c.enc] = m
		}
		if c.trySend(m) {
			queued++
		}
	}
	h.m.FramesOut.Add(int64(queued))
	return true
}

// push is p's push in one encoding, shared by every subscriber using it:
// the payload for conn.WriteMessage in per-connection mode (gorilla frames
// and, where negotiated, compresses it on each connection), else a
// PreparedMessage (framed and compressed once). nil: nothing to push.
func (h *hub) push(enc codec.Encoding, p *codec.Publication) *outbound {
	payload := encodePush(enc, p)
	if payload == nil {
		return nil
	}
	if h.perConn {
		return &outbound{msgType: messageType(enc), data: payload}
	}
	pm, err := websocket.NewPreparedMessage(messageType(enc), payload)
	if err != nil { // only for control frames or compression failures: not here
		return nil
	}
	return &outbound{prepared: pm}
}

// encodePush encodes p's push for one encoding: a message, or a join/leave
// push for a presence event (published by wsgate instances sharing the
// broker; the naive server publishes none itself). nil for other kinds.
func encodePush(enc codec.Encoding, p *codec.Publication) []byte {
	switch p.Kind {
	case codec.KindPublication:
		return codec.AppendMessage(nil, enc, string(p.Channel), p.Offset, string(p.Epoch), p.Data)
	case codec.KindJoin:
		return codec.AppendJoin(nil, enc, string(p.Channel), string(p.Client), string(p.User))
	case codec.KindLeave:
		return codec.AppendLeave(nil, enc, string(p.Channel), string(p.Client), string(p.User))
	}
	return nil
}
