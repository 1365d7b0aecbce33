package gateway

import (
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/holdback"
)

// A subscribe with a resume position: the subscription goes live at once,
// but its live frames are held back while history is read, then the
// reply, the missed publications and the held frames history did not
// cover are queued in one go — neither a gap nor a duplicate at the seam.
// Holding and "release what history did not cover" belong to
// gateway/holdback, which the hub uses too (once per channel, for gap
// repairs); this file decides what a resume replies and replays.

// recovery is a channel's subscribe waiting for the broker: the live
// frames held back meanwhile, by epoch and offset (0 for join/leave and
// notices, which history never covers), their bytes counted against the
// queue limit; the subscribe's id; and whether the server API ended the
// subscription and so answered the subscribe itself (see leave).
type recovery struct {
	holdback.Buffer[[]byte]
	id       uint32 // the subscribe's (0: no reply wanted)
	answered bool   // guarded by subState.mu
}

// startRecovery begins holding ch's live frames back while a subscribe
// waits for the broker (worker only; the session has subscribed state).
// The buffer is also the subscribe's token: a later subscribe of ch
// replaces it and an unsubscribe removes it, so the broker's answer to
// this one can tell it no longer stands.
func (s *session) startRecovery(ch string, id uint32) *recovery {
	rec := &recovery{id: id}
	rec.Start()
	u := s.sub
	u.mu.Lock()
	if u.recovering == nil {
		u.recovering = map[string]*recovery{}
	}
	u.recovering[ch] = rec
	u.mu.Unlock()
	return rec
}

// finishSubscribe answers a fresh subscribe with the broker's position,
// then the live frames held back meanwhile that came after it, in one go
// under the subscription lock (as finishRecovery does).
func (s *session) finishSubscribe(ch string, rec *recovery, pos broker.Position, reply codec.Reply) {
	s.srv.hub.Observe(ch, pos)
	var frames [][]byte
	if reply.ID != 0 {
		frames = append(frames, s.frame(codec.AppendReply(nil, s.enc, reply)))
	}
	u := s.sub
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec.answered {
		return
	}
	if r := u.takeLocked(ch, rec); r != nil {
		frames = append(frames, r.Uncovered(holdback.Position{Epoch: pos.Epoch, Offset: pos.Offset})...)
	}
	s.t.writeAll(frames, true)
}

// endedByServerReply answers, at once, a subscribe whose subscription the
// server API ended while it waited for the broker: 108, final, rather than
// a success followed by an unsubscribe push a client would not heed (it
// ignores pushes about a subscription it has not been confirmed) or a 111
// it would retry, undoing the backend's decision. A subscribe sent without
// an id gets the unsubscribe push instead: an error with id 0 would not
// say which channel ended.
func (s *session) endedByServerReply(id uint32, ch string) []byte {
	if id == 0 {
		return s.frame(codec.AppendUnsubscribe(nil, s.enc, ch))
	}
	return s.frame(codec.AppendError(nil, s.enc, id, codec.CodePermission, "unsubscribed by the server"))
}

// takeLocked ends the hold rec of ch (see startRecovery) and returns it,
// or nil when it was cancelled (unsubscribed meanwhile) or superseded by a
// later subscribe's own (or rec is nil: there was none).
func (u *subState) takeLocked(ch string, rec *recovery) *recovery {
	r := u.recovering[ch]
	if r != rec || r == nil {
		return nil
	}
	deleteKey(&u.recovering, ch)
	return r
}

// dropRecovery ends the hold rec of ch and discards the frames it held;
// it reports whether rec was still ch's (not cancelled by an unsubscribe
// nor superseded by a later subscribe).
func (s *session) dropRecovery(ch string, rec *recovery) bool {
	u := s.sub
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.takeLocked(ch, rec) != nil
}

// finishRecovery answers a subscribe with a resume position: the reply
// (recovered or not, and why), the missed publications if recovered, then
// the live ones held back meanwhile that history did not already cover, in
// one go under the subscription lock, so Enqueue cannot slip a live frame
// in between.
func (s *session) finishRecovery(ch string, rec *recovery, since uint64, epoch string, res broker.HistoryResult) {
	id := rec.id
	s.srv.hub.Observe(ch, res.Position)
	recovered, reason := recoverable(since, epoch, res)
	var frames [][]byte
	if id != 0 { // else no reply wanted
		frames = append(frames, s.frame(codec.AppendReply(nil, s.enc, codec.Reply{
			ID: id, Cmd: codec.CmdSubscribe, Offset: res.Position.Offset, Epoch: res.Position.Epoch,
			Resumed: true, Recovered: recovered, Reason: reason,
		})))
	}
	if recovered {
		for _, p := range res.Publications {
			frames = append(frames, s.frame(codec.AppendMessage(nil, s.enc, ch, p.Offset, res.Position.Epoch, p.Data)))
		}
	}
	u := s.sub
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec.answered {
		return
	}
	r := u.takeLocked(ch, rec)
	if r == nil { // unsubscribed meanwhile: just answer the subscribe
		var reply [][]byte
		if id != 0 {
			reply = frames[:1]
		}
		s.t.writeAll(reply, true)
		return
	}
	top := holdback.Position{Epoch: res.Position.Epoch, Offset: res.Position.Offset}
	frames = append(frames, r.Uncovered(top)...)
	// Recovered frames may exceed MaxQueueBytes at once: they are bounded
	// by the channel's history size instead, and the limit applies again
	// to what follows.
	s.t.writeAll(frames, true)
	if recovered && len(res.Publications) > 0 {
		if u.resumedTop == nil {
			u.resumedTop = map[string]holdback.Position{}
		}
		u.resumedTop[ch] = top
	}
}

// recoverable decides whether history covers (since, top] of the epoch the
// client knew.
func recoverable(since uint64, epoch string, res broker.HistoryResult) (bool, string) {
	top := res.Position.Offset
	pubs := res.Publications
	switch {
	case epoch != res.Position.Epoch:
		return false, "epoch changed"
	case since > top:
		return false, "position ahead of the stream"
	case since == top:
		return true, ""
	case len(pubs) == 0 || pubs[0].Offset != since+1 || pubs[len(pubs)-1].Offset != top:
		return false, "too old: history no longer has it"
	}
	return true, ""
}
