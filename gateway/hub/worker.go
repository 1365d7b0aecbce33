package hub

import (
	"bytes"
	"slices"
	"sync/atomic"

	"github.com/wsgate/wsgate/codec"
)

// A shard's write worker delivers in runs and rounds, so that what the
// kernel is asked to do approaches the floor: one write per socket per
// burst, and no per-delivery work beyond queueing a frame reference.
//
//   - A run is a stretch of consecutive publications of one channel, in
//     order (no duplicate, gap or epoch change among them). The run is
//     checked once under the shard lock, framed once per encoding, and each
//     subscriber takes the whole run in one Enqueue call: one lock and one
//     interface call per subscriber per run instead of per publication.
//   - A round is what the worker delivers between two flushes. It goes on
//     while publications keep arriving, up to roundPubs publications or
//     flushBytes bytes of frames, then every touched subscriber is flushed
//     once. One publication at a time is still flushed at once (the queue
//     is empty right after it).
const (
	roundPubs  = 256
	flushBytes = 256 << 10 // bounds what a round queues on one socket before a flush

	maxYields       = 4  // times a round's last flush may stop for new arrivals
	yieldCheckEvery = 64 // subscribers flushed (one FlushAll call) between two looks at the queue
)

// worker holds a write worker's reusable buffers: delivering allocates
// nothing per subscriber.
type worker struct {
	shard    *shard
	snapshot []member
	dirty    []Subscriber
	frames   [formats][][]byte     // a run's frames, by format
	one      [1]*codec.Publication // a run of one (events, notices, repairs)

	roundPubs  int // publications delivered since the last flush
	roundBytes int // bytes of frames built since the last flush
	yields     int // times this round's last flush stopped for new arrivals
}

// member is a subscriber as a fan-out sees it: its encoding was read once,
// when it subscribed.
type member struct {
	sub Subscriber
	fmt format
}

// run is a shard's write worker: it takes publications in batches and
// delivers them in rounds.
func (s *shard) run() {
	defer s.hub.wg.Done()
	w := s.worker
	batch := make([]*codec.Publication, s.hub.cfg.BatchSize)
	var ctrl []func()
	wait := true
	for {
		n := s.queue.popBatch(batch, &ctrl, wait)
		if n == 0 && len(ctrl) == 0 {
			if wait {
				return // closed and drained
			}
			// The queue ran dry: the round ends, unless publications
			// arrive while it is being flushed.
			wait = w.endRound()
			continue
		}
		for i, fn := range ctrl {
			fn()
			ctrl[i] = nil
		}
		ctrl = ctrl[:0]
		w.deliverBatch(batch[:n])
		for i, p := range batch[:n] {
			s.hub.stats.Queued.Add(-queueCost(p))
			batch[i] = nil
		}
		if w.roundPubs >= roundPubs {
			w.flush()
		}
		wait = false
	}
}

// deliverBatch delivers pubs run by run, flushing whenever the round has
// queued flushBytes: a batch of large publications must not pile up on a
// socket past what a healthy reader can be expected to hold.
func (w *worker) deliverBatch(pubs []*codec.Publication) {
	for len(pubs) > 0 {
		pubs = pubs[w.deliverRun(pubs):]
		if w.roundBytes >= flushBytes {
			w.flush()
		}
	}
}

// deliverRun delivers pubs[0] and the publications of its channel that
// follow it in order (up to the round's byte bound), and returns how many
// it took. A head that is not in
// order (a duplicate, a gap, an epoch change, or held while a repair runs)
// goes alone through admit. A resync request (Hub.Resync) starts a
// resync.
func (w *worker) deliverRun(pubs []*codec.Publication) int {
	head := pubs[0]
	switch head.Kind {
	case codec.KindPublication:
	case codec.KindGap:
		w.resync(string(head.Channel))
		return 1
	default:
		w.deliverEvent(head)
		return 1
	}
	s := w.shard
	s.mu.Lock()
	ch := s.channels[string(head.Channel)]
	if ch == nil {
		s.mu.Unlock()
		return 1
	}
	k, size := 0, w.roundBytes
	for k < len(pubs) && size < flushBytes && sameRun(head, pubs[k]) && inOrder(ch, pubs[k]) {
		advance(ch, pubs[k])
		size += len(pubs[k].Data)
		k++
	}
	if k == 0 {
		k = 1
		if !w.admit(ch, head) {
			s.mu.Unlock()
			return 1
		}
	}
	// The subscriber set is copied under the lock and written to outside
	// it, so subscribing never waits for a fan-out. (Repairs, rare, fan out
	// under the shard lock; that is safe because no connection calls into
	// the hub while holding its own lock.)
	w.snapshotLocked(ch)
	s.mu.Unlock()
	w.fanOut(pubs[:k], messageFrame, &s.hub.stats.Delivered)
	return k
}

func sameRun(head, p *codec.Publication) bool {
	return p.Kind == codec.KindPublication && bytes.Equal(p.Channel, head.Channel)
}

// deliverEvent fans a join/leave event out to the channel's subscribers.
// It bypasses admit: an event has no offset, so it neither moves the
// channel's position nor waits for a gap fill.
func (w *worker) deliverEvent(p *codec.Publication) {
	if !p.Kind.IsEvent() {
		return // a kind this hub does not know (the decoder refuses them)
	}
	s := w.shard
	s.mu.Lock()
	ch := s.channels[string(p.Channel)]
	if ch == nil {
		s.mu.Unlock()
		return
	}
	w.snapshotLocked(ch)
	s.mu.Unlock()
	w.fanOutOne(p, eventFrame, &s.hub.stats.Events)
}

// snapshotLocked copies the channel's subscribers for a fan-out.
func (w *worker) snapshotLocked(ch *chanState) {
	for sub, f := range ch.subs {
		w.snapshot = append(w.snapshot, member{sub, f})
	}
}

// fanOut queues the run pubs, framed by frame once per format in use, to
// the snapshot of subscribers, and counts the frames queued.
func (w *worker) fanOut(pubs []*codec.Publication, frame frameFunc, count *atomic.Int64) {
	var built [formats]bool
	for i := range w.snapshot {
		m := &w.snapshot[i]
		if !built[m.fmt] {
			w.build(m.fmt, pubs, frame, &built)
		}
		if m.sub.Enqueue(pubs, w.frames[m.fmt]) {
			w.dirty = append(w.dirty, m.sub)
		}
		m.sub = nil
	}
	count.Add(int64(len(w.snapshot) * len(pubs)))
	w.snapshot = w.snapshot[:0]
	w.roundPubs += len(pubs)
	for enc := range w.frames {
		clear(w.frames[enc]) // the subscribers hold the frames now, not the worker
	}
}

// fanOutOne is fanOut for a single publication or notice.
func (w *worker) fanOutOne(p *codec.Publication, frame frameFunc, count *atomic.Int64) {
	w.one[0] = p
	w.fanOut(w.one[:], frame, count)
	w.one[0] = nil
}

// build frames the run in format f. A compressed format is made from the
// plain frames of its encoding (built first if they are not yet), so each
// publication is encoded once and compressed once per encoding.
func (w *worker) build(f format, pubs []*codec.Publication, frame frameFunc, built *[formats]bool) {
	plain := format(f.encoding())
	if !built[plain] {
		w.frames[plain] = w.buildFrames(w.frames[plain][:0], plain.encoding(), pubs, frame)
		built[plain] = true
	}
	if f == plain {
		return
	}
	if f.window() < 15 { // frames.go
		w.buildWindow(f, pubs, frame, built)
		return
	}
	hub := w.shard.hub
	dst := w.frames[f][:0]
	for _, pf := range w.frames[plain] {
		// roundBytes already counts the plain frame: an upper bound.
		dst = append(dst, compressFrame(pf, hub.cfg.CompressMinBytes, &hub.stats.Compressed))
	}
	w.frames[f] = dst
	built[f] = true
}

// buildFrames appends the frames of pubs in encoding enc to dst.
func (w *worker) buildFrames(dst [][]byte, enc codec.Encoding, pubs []*codec.Publication, frame frameFunc) [][]byte {
	for _, p := range pubs {
		f := frame(enc, p)
		w.roundBytes += len(f)
		dst = append(dst, f)
	}
	return dst
}

// flush ends a round: every subscriber touched since the last flush writes
// what its socket takes now.
func (w *worker) flush() {
	w.flushSubs(w.dirty)
	clear(w.dirty)
	w.dirty = w.dirty[:0]
	w.roundPubs, w.roundBytes, w.yields = 0, 0, 0
}

// flushSubs flushes subs, all at once when the hub was given FlushAll.
func (w *worker) flushSubs(subs []Subscriber) {
	if flushAll := w.shard.hub.cfg.FlushAll; flushAll != nil {
		flushAll(subs)
		return
	}
	for _, sub := range subs {
		sub.Flush()
	}
}

// endRound flushes the touched subscribers once the queue ran dry, and
// reports whether the round ended. Flushing 10,000 sockets takes long
// enough for the rest of a burst to arrive after its head: then, up to
// maxYields times a round, it stops and lets the worker deliver what
// arrived, so the subscribers not yet flushed take the whole burst in one
// write instead of two. Those already flushed stay flushed; the rest keep
// their place at the front of the list, so each yield delays them by one
// run's queueing, never by a flush of anyone after them. Subscribers are
// flushed yieldCheckEvery at a time, between two looks at the queue.
func (w *worker) endRound() bool {
	i := 0
	for i < len(w.dirty) {
		if w.yields < maxYields && w.shard.queue.pending() {
			w.yields++
			break
		}
		next := min(i+yieldCheckEvery, len(w.dirty))
		w.flushSubs(w.dirty[i:next])
		i = next
	}
	w.dirty = slices.Delete(w.dirty, 0, i)
	if len(w.dirty) > 0 {
		return false
	}
	w.roundPubs, w.roundBytes, w.yields = 0, 0, 0
	return true
}
