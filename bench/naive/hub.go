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

	interest sync.Mutex
	mu       sync.RWMutex
	channels map[string]map[*client]struct{}
}

func newHub(b broker.Broker, m *metrics) *hub {
	return &hub{broker: b, m: m, channels: map[string]map[*client]struct{}{}}
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

// Deliver implements broker.Sink. It frames the publication once per
// encoding as a PreparedMessage and offers it to every subscriber without
// blocking; a subscriber whose send channel is full is dropped, as in
// gorilla's chat hub. It never refuses a publication as a whole.
// Resync implements broker.Sink: the naive hub keeps no delivery
// position, so it has nothing to repair (a lapse loses what it missed, as
// gorilla's chat hub would).
func (h *hub) Resync(string) {}

func (h *hub) Deliver(p *codec.Publication) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	subs := h.channels[string(p.Channel)] // no allocation: map index by string(bytes)
	var prepared [2]*outbound             // indexed by codec.Encoding, built on first use
	queued := 0
	for c := range subs {
		m := prepared[c.enc]
		if m == nil {
			if m = preparePush(c.enc, p); m == nil {
				continue
			}
			prepared[c.enc] = m
		}
		if c.trySend(m) {
			queued++
		}
	}
	h.m.FramesOut.Add(int64(queued))
	return true
}

// preparePush encodes and frames p's push for one encoding: a message, or
// a join/leave push for a presence event (published by wsgate instances
// sharing the broker; the naive server publishes none itself).
func preparePush(enc codec.Encoding, p *codec.Publication) *outbound {
	var payload []byte
	switch p.Kind {
	case codec.KindPublication:
		payload = codec.AppendMessage(nil, enc, string(p.Channel), p.Offset, string(p.Epoch), p.Data)
	case codec.KindJoin:
		payload = codec.AppendJoin(nil, enc, string(p.Channel), string(p.Client), string(p.User))
	case codec.KindLeave:
		payload = codec.AppendLeave(nil, enc, string(p.Channel), string(p.Client), string(p.User))
	default:
		return nil
	}
	pm, err := websocket.NewPreparedMessage(messageType(enc), payload)
	if err != nil { // only for control frames or compression failures: not here
		return nil
	}
	return &outbound{prepared: pm}
}
