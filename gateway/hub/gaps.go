package hub

import (
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// admit decides, under the shard lock, whether p is delivered now: it
// drops duplicates (an offset already delivered, e.g. after a pub/sub
// reconnect), holds p back while a gap is being filled, and starts a fill
// when p's offset jumps past the next one expected (the broker dropped a
// message or the pub/sub connection was re-established). A new epoch
// restarts the count.
func (w *worker) admit(ch *chanState, p *codec.Publication) bool {
	hub := w.shard.hub
	if ch.filling {
		if len(ch.held) < maxHeld {
			ch.held = append(ch.held, p)
			return false
		}
		// The fill takes too long: give up on it (its answer will be
		// ignored), declare the gap lost and deliver on from what is held.
		ch.fillID++
		w.lostLocked(ch, string(p.Channel), ch.last+1, ch.held[0].Offset-1)
		ch.last = ch.held[0].Offset - 1
		w.releaseHeldLocked(ch)
		if ch.filling { // what was held had a gap of its own
			ch.held = append(ch.held, p)
			return false
		}
	}
	epoch := string(p.Epoch)
	if ch.epoch == epoch && ch.last != 0 {
		switch {
		case p.Offset <= ch.last:
			hub.stats.Duplicates.Add(1)
			return false
		case p.Offset > ch.last+1:
			hub.stats.Gaps.Add(1)
			ch.filling, ch.held = true, append(ch.held, p)
			ch.fillID++
			w.fill(ch, ch.fillID, string(p.Channel), ch.last, p.Offset-1)
			return false
		}
	}
	ch.epoch, ch.last = epoch, p.Offset
	return true
}

// fill asks the broker for offsets (from, to] and, when they arrive, hands
// them to the shard worker, which delivers them and then what was held.
func (w *worker) fill(ch *chanState, id uint64, name string, from, to uint64) {
	s := w.shard
	s.hub.broker.History(name, broker.HistoryQuery{Since: from, Limit: int(to - from)}, func(res broker.HistoryResult, err error) {
		s.queue.pushCtrl(func() { w.completeFill(ch, id, name, from, to, res, err) })
	})
}

// completeFill runs on the shard worker: deliver the recovered
// publications in order (counting what history could not provide), then the
// held ones.
func (w *worker) completeFill(ch *chanState, id uint64, name string, from, to uint64, res broker.HistoryResult, err error) {
	s := w.shard
	s.mu.Lock()
	// Ignore the answer when the channel lost its subscribers meanwhile or
	// this fill was given up (a later one may be running).
	if s.channels[name] != ch || !ch.filling || ch.fillID != id {
		s.mu.Unlock()
		return
	}
	next := from + 1
	if err == nil && res.Position.Epoch == ch.epoch {
		for _, e := range res.Publications {
			if e.Offset < next || e.Offset > to {
				continue
			}
			w.lostLocked(ch, name, next, e.Offset-1)
			s.hub.stats.GapsFilled.Add(1)
			p := &codec.Publication{Channel: []byte(name), Data: e.Data, Offset: e.Offset, Epoch: []byte(ch.epoch)}
			w.deliverLocked(ch, p)
			next = e.Offset + 1
		}
	}
	w.lostLocked(ch, name, next, to)
	ch.last = to
	w.releaseHeldLocked(ch)
	s.mu.Unlock()
	w.flush()
}

// releaseHeldLocked ends a fill and delivers the held publications through
// admit again (one of them may start the next fill).
func (w *worker) releaseHeldLocked(ch *chanState) {
	held := ch.held
	ch.filling, ch.held = false, nil
	for i, p := range held {
		if ch.filling { // a new gap: keep the rest held, in order
			ch.held = append(ch.held, held[i:]...)
			return
		}
		if w.admit(ch, p) {
			w.deliverLocked(ch, p)
		}
	}
}

// deliverLocked fans p out while the shard lock is held (gap paths only;
// the live path snapshots and unlocks first).
func (w *worker) deliverLocked(ch *chanState, p *codec.Publication) {
	ch.epoch, ch.last = string(p.Epoch), p.Offset
	for sub := range ch.subs {
		w.snapshot = append(w.snapshot, sub)
	}
	w.fanOut(p, messageFrame, &w.shard.hub.stats.Delivered)
}

// lostLocked counts publications from..to that history could not provide
// and tells the channel's subscribers (a "gap" push), so they know to
// reload instead of silently missing them.
func (w *worker) lostLocked(ch *chanState, name string, from, to uint64) {
	if from > to {
		return
	}
	s := w.shard
	s.hub.stats.GapsLost.Add(int64(to - from + 1))
	for sub := range ch.subs {
		w.snapshot = append(w.snapshot, sub)
	}
	notice := &codec.Publication{Channel: []byte(name), Kind: codec.KindGap}
	w.fanOut(notice, func(enc codec.Encoding, _ *codec.Publication) []byte {
		return frameIn(codec.AppendGap(make([]byte, wsframe.MaxServerHeader, wsframe.MaxServerHeader+len(name)+48), enc, name, from, to), enc)
	}, &s.hub.stats.GapNotices)
}
