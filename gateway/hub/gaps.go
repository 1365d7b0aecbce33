package hub

import (
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/holdback"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// Repairs. A channel's delivery position (epoch, last offset) lets the
// shard worker notice three ways in which live delivery can miss
// publications, and repair each from the broker's history while holding
// later publications back, in order:
//
//   - a gap: an offset jumps past the next one expected (a full queue
//     dropped some, or a pub/sub connection was re-established): fill the
//     missing offsets;
//   - an epoch change: the history was lost (a broker restarted without
//     persistence): announce it with an epoch push, then deliver the new
//     epoch from its first offset;
//   - a lapse: the broker's subscription was lost and is back (Resync),
//     with possibly nothing newer arriving to reveal a gap: read history
//     from the last offset delivered, again after a backoff while the
//     read fails.
//
// What history no longer has is announced to the subscribers with a gap
// push in its place, so nothing is missed without a word.
//
// Holding and releasing in order what the position does not cover belong
// to gateway/holdback (a resuming session holds its live frames with the
// same type); this file decides when to repair, what to ask history and
// when to give up.

// inOrder reports, under the shard lock, whether p is simply the next
// publication of the channel: no repair running, and no duplicate, gap or
// epoch change for admit to act on. Such publications are delivered in
// runs (worker.go); every other one goes through admit alone.
func inOrder(ch *chanState, p *codec.Publication) bool {
	return !ch.held.Holding() && ch.pos.Judge(p.Epoch, p.Offset) == holdback.Next
}

// giveWay lowers an observed position that covers a publication at
// (epoch, offset) to just below it, so that the publication is delivered
// rather than dropped as a duplicate. The positions subscribers are told
// reach Observe in no fixed order (each comes from its own broker read,
// answered on its own goroutine), so a subscriber still waiting for its
// answer may yet be told a lower position than any observed so far, and
// need this publication. An observed position reveals gaps and epoch
// changes; only a delivered one makes duplicates. A subscriber already
// told this offset or a later one gets it twice and drops it by its
// offset.
func giveWay(ch *chanState, epoch []byte, offset uint64) {
	if ch.observed && ch.pos.Judge(epoch, offset) == holdback.Covered {
		ch.pos.Offset = offset - 1
	}
}

// advance moves the channel's position to p, which is being delivered.
func advance(ch *chanState, p *codec.Publication) {
	if p.Offset != 0 { // else no history position: nothing moves
		ch.pos.Advance(p.Epoch, p.Offset)
		ch.observed = false
	}
}

// admit decides, under the shard lock, whether p is delivered now: it
// drops duplicates (an offset already delivered, e.g. after a pub/sub
// reconnect; see giveWay), holds p back while a repair runs, and starts
// one when p reveals a gap or a new epoch.
func (w *worker) admit(ch *chanState, p *codec.Publication) bool {
	if ch.held.Holding() {
		if ch.held.Len() < maxHeld {
			hold(ch, p)
			return false
		}
		w.giveUpLocked(ch, string(p.Channel))
		if ch.held.Holding() { // what was held had a gap of its own
			hold(ch, p)
			return false
		}
	}
	giveWay(ch, p.Epoch, p.Offset)
	verdict := ch.pos.Judge(p.Epoch, p.Offset)
	if verdict == holdback.Covered {
		w.shard.hub.stats.Duplicates.Add(1)
		return false
	}
	if !w.followLocked(ch, p, verdict) {
		hold(ch, p)
		return false
	}
	advance(ch, p)
	return true
}

// hold keeps p back while a repair runs (maxHeld counts publications).
func hold(ch *chanState, p *codec.Publication) { ch.held.Hold(p.Epoch, p.Offset, p, 1) }

// followLocked decides, with no repair running, whether p — which the
// channel's position does not cover — is delivered now (true), or reveals
// missing publications: a new epoch is announced first (the position
// restarts at its beginning), and a gap starts a fill, behind which p
// must wait (false).
func (w *worker) followLocked(ch *chanState, p *codec.Publication, verdict holdback.Verdict) bool {
	if verdict == holdback.NewEpoch {
		w.epochChangedLocked(ch, string(p.Channel), string(p.Epoch))
		verdict = ch.pos.Judge(p.Epoch, p.Offset) // offset 1 is next, any other a gap
	}
	if verdict != holdback.Gap {
		return true
	}
	w.shard.hub.stats.Gaps.Add(1)
	w.startFillLocked(ch, string(p.Channel), ch.pos.Offset, p.Offset-1)
	return false
}

// giveUpLocked gives up on a repair that takes too long (maxHeld reached;
// its answer will be ignored): the publications missing before the first
// held one are declared lost, and the held ones are released.
func (w *worker) giveUpLocked(ch *chanState, name string) {
	ch.fillID++
	if epoch, first, ok := ch.held.First(); ok && ch.pos.Epoch == string(epoch) && first > ch.pos.Offset+1 {
		w.lostLocked(ch, name, ch.pos.Offset+1, first-1)
		ch.pos.Offset = first - 1
	}
	w.releaseHeldLocked(ch)
}

// epochChangedLocked tells the channel's subscribers that its history was
// lost (an epoch push naming the last offset delivered of the old epoch)
// and restarts the channel's position at the new epoch's beginning, so
// that its first publications are filled from history rather than skipped.
func (w *worker) epochChangedLocked(ch *chanState, name, epoch string) {
	s := w.shard
	s.hub.stats.EpochChanges.Add(1)
	prev, last := ch.pos.Epoch, ch.pos.Offset
	w.snapshotLocked(ch)
	notice := &codec.Publication{Channel: []byte(name), Kind: codec.KindEpoch}
	w.fanOutOne(notice, func(enc codec.Encoding, _ *codec.Publication) []byte {
		buf := make([]byte, wsframe.MaxServerHeader, wsframe.MaxServerHeader+len(name)+len(epoch)+len(prev)+64)
		return frameIn(codec.AppendEpoch(buf, enc, name, epoch, prev, last), enc)
	}, &s.hub.stats.GapNotices)
	ch.pos, ch.observed = holdback.Position{Epoch: epoch}, false
}

// startFillLocked holds the channel's delivery and asks the broker for
// offsets (from, to] of its epoch.
func (w *worker) startFillLocked(ch *chanState, name string, from, to uint64) {
	ch.held.Start()
	ch.fillID++
	id, s := ch.fillID, w.shard
	s.hub.broker.History(name, broker.HistoryQuery{Since: from, Limit: int(to - from)}, func(res broker.HistoryResult, err error) {
		s.queue.pushCtrl(func() { w.completeFill(ch, id, name, from, to, res, err) })
	})
}

// completeFill runs on the shard worker: deliver the recovered
// publications in order (announcing what history could not provide), then
// the held ones.
func (w *worker) completeFill(ch *chanState, id uint64, name string, from, to uint64, res broker.HistoryResult, err error) {
	s := w.shard
	s.mu.Lock()
	if !w.current(ch, id, name) {
		s.mu.Unlock()
		return
	}
	next := from + 1
	if err == nil && res.Position.Epoch == ch.pos.Epoch {
		next = w.deliverHistoryLocked(ch, name, res.Publications, next, to, &s.hub.stats.GapsFilled)
	}
	w.lostLocked(ch, name, next, to)
	ch.pos.Offset = max(ch.pos.Offset, to)
	w.endRepairLocked(ch, name)
	s.mu.Unlock()
	w.flush()
}

// current reports whether the answer of repair id is still wanted: the
// channel kept its subscribers and the repair was not given up (a later
// one may be running).
func (w *worker) current(ch *chanState, id uint64, name string) bool {
	return w.shard.channels[name] == ch && ch.held.Holding() && ch.fillID == id
}

// deliverHistoryLocked delivers the entries of pubs with offsets in
// [next, to] in order, announcing holes between them, and returns the
// offset after the last one delivered.
func (w *worker) deliverHistoryLocked(ch *chanState, name string, pubs []broker.HistoryEntry, next, to uint64, count interface{ Add(int64) int64 }) uint64 {
	for _, e := range pubs {
		if e.Offset < next || e.Offset > to {
			continue
		}
		w.lostLocked(ch, name, next, e.Offset-1)
		count.Add(1)
		p := &codec.Publication{Channel: []byte(name), Data: e.Data, Offset: e.Offset, Epoch: []byte(ch.pos.Epoch)}
		w.deliverLocked(ch, p)
		next = e.Offset + 1
	}
	return next
}

// resync runs on the shard worker when a resync request reaches the head
// of its queue (Hub.Resync): read history after the last offset
// delivered, holding live publications meanwhile.
func (w *worker) resync(name string) {
	s := w.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[name]
	switch {
	case ch == nil || ch.pos.Epoch == "":
		return // nothing delivered or observed yet: nothing to compare with
	case ch.held.Holding():
		ch.resync = true // after the running repair
		return
	}
	w.startResyncLocked(ch, name)
}

func (w *worker) startResyncLocked(ch *chanState, name string) {
	s := w.shard
	s.hub.stats.Resyncs.Add(1)
	ch.held.Start()
	ch.resync = false
	ch.fillID++
	id, epoch, since := ch.fillID, ch.pos.Epoch, ch.pos.Offset
	s.hub.broker.History(name, broker.HistoryQuery{Since: since}, func(res broker.HistoryResult, err error) {
		s.queue.pushCtrl(func() { w.completeResync(ch, id, name, epoch, since, res, err) })
	})
}

// completeResync delivers what a resync read: the publications after the
// last one delivered, or — when the epoch changed meanwhile — an epoch
// push and then the new epoch from its beginning (a second read).
func (w *worker) completeResync(ch *chanState, id uint64, name, epoch string, since uint64, res broker.HistoryResult, err error) {
	s := w.shard
	s.mu.Lock()
	if !w.current(ch, id, name) {
		s.mu.Unlock()
		return
	}
	if err == nil {
		ch.backoff = 0
	}
	switch {
	case err != nil:
		// History is unreachable. The held publications reveal gaps of
		// their own (a fill announces what it cannot read), but on a quiet
		// channel nothing would: read again later.
		w.retryResyncLocked(ch, name)
	case res.Position.Epoch != epoch:
		w.epochChangedLocked(ch, name, res.Position.Epoch)
		if res.Position.Offset > 0 { // the held ones wait for this fill too
			w.startFillLocked(ch, name, 0, res.Position.Offset)
			s.mu.Unlock()
			w.flush()
			return
		}
	default:
		top := res.Position.Offset
		next := w.deliverHistoryLocked(ch, name, res.Publications, since+1, top, &s.hub.stats.ResyncFilled)
		w.lostLocked(ch, name, next, top)
		ch.pos.Offset = max(ch.pos.Offset, top)
	}
	w.endRepairLocked(ch, name)
	s.mu.Unlock()
	w.flush()
}

// The wait before a failed resync is tried again: it doubles from the
// first while history stays unreachable, up to the last.
const (
	minResyncBackoff = 100 * time.Millisecond
	maxResyncBackoff = 10 * time.Second
)

// retryResyncLocked schedules another resync of a channel whose history
// read failed. At most one waits per channel, and it ends with the channel
// (Unsubscribe stops it).
func (w *worker) retryResyncLocked(ch *chanState, name string) {
	if ch.retry != nil {
		return
	}
	w.shard.hub.stats.ResyncRetries.Add(1)
	ch.backoff = min(max(2*ch.backoff, minResyncBackoff), maxResyncBackoff)
	ch.retry = time.AfterFunc(ch.backoff, func() { w.retryResync(ch, name) })
}

// retryResync runs when a retry's wait is over: the resync is asked for
// like the broker's, unless the channel lost its subscribers meanwhile.
func (w *worker) retryResync(ch *chanState, name string) {
	s := w.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	ch.retry = nil
	if s.channels[name] == ch {
		s.hub.Resync(name)
	}
}

// endRepairLocked ends a repair: the held publications go through admit
// again (one may start the next repair), then a resync asked for meanwhile
// runs.
func (w *worker) endRepairLocked(ch *chanState, name string) {
	w.releaseHeldLocked(ch)
	if ch.resync && !ch.held.Holding() {
		w.startResyncLocked(ch, name)
	}
}

// releaseHeldLocked ends a repair's hold: the held publications the
// channel's position now covers are dropped as duplicates (a position that
// is only observed gives way first, see giveWay), the others are delivered
// in order — until one reveals a gap or a new epoch whose fill starts,
// behind which it and the rest stay held.
func (w *worker) releaseHeldLocked(ch *chanState) {
	if epoch, first, ok := ch.held.First(); ok {
		giveWay(ch, epoch, first)
	}
	dups := ch.held.Release(&ch.pos, func(p *codec.Publication, verdict holdback.Verdict) bool {
		if !w.followLocked(ch, p, verdict) {
			return false
		}
		w.deliverLocked(ch, p)
		return true
	})
	w.shard.hub.stats.Duplicates.Add(int64(dups))
}

// deliverLocked fans p out while the shard lock is held (repair paths
// only; the live path snapshots and unlocks first).
func (w *worker) deliverLocked(ch *chanState, p *codec.Publication) {
	advance(ch, p)
	w.snapshotLocked(ch)
	w.fanOutOne(p, messageFrame, &w.shard.hub.stats.Delivered)
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
	w.snapshotLocked(ch)
	notice := &codec.Publication{Channel: []byte(name), Kind: codec.KindGap}
	w.fanOutOne(notice, func(enc codec.Encoding, _ *codec.Publication) []byte {
		return frameIn(codec.AppendGap(make([]byte, wsframe.MaxServerHeader, wsframe.MaxServerHeader+len(name)+48), enc, name, from, to), enc)
	}, &s.hub.stats.GapNotices)
}
