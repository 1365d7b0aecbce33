package gateway

import (
	"errors"
	"sync"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/holdback"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// transport is what a session needs of its connection (conn implements it
// in conn_write.go; session tests use a fake). Frames passed in are never
// modified afterwards and may be shared.
type transport interface {
	// send queues a frame; the worker flushes after the read batch.
	// Worker only.
	send(frame []byte)
	// write queues a frame and flushes. Any goroutine.
	write(frame []byte)
	// writeAll queues frames in one go and flushes; force: past the queue
	// limit. Any goroutine.
	writeAll(frames [][]byte, force bool)
	// enqueue queues fan-out frames under one lock without flushing and
	// reports whether the caller must flush. Any goroutine.
	enqueue(frames [][]byte) (flush bool)
	// flush writes what the socket takes now. Any goroutine.
	flush()
	// overLimit reports whether extra held bytes on top of the backlog
	// pass the queue limit, and if so closes as a slow consumer.
	overLimit(extra int) bool
	// close starts a close with code and reason. Worker only.
	close(code uint16, reason string)
	// runOnWorker runs fn on the connection's worker, unless it closes
	// first.
	runOnWorker(fn func())
	// replan runs the connection's timer now (its deadlines changed).
	replan()
}

// session is the client protocol of a /ws connection: who it is, its
// encoding, its command rate, and — once it subscribed — its
// subscriptions and resume state. Everything but sub is touched only by
// the connection's worker; sub is allocated by the first subscribe, so a
// connection that never subscribed carries its identity and nothing else.
type session struct {
	t   transport
	srv *Server
	// ident is who the client is; nil for an anonymous connection without
	// a channel grant or an expiry (most idle ones). Its UserID is never
	// written after the upgrade (a refresh must keep the user).
	ident *Identity
	sub   *subState // nil until the first subscribe; never reset
	// seq and fd make the client id (clientID), built when needed rather
	// than held by every idle connection.
	seq     uint64
	limiter limiter // command rate
	fd      int32
	enc     codec.Encoding
	asked   bool // a refresh was requested (token expired)
	// window: what permessage-deflate negotiated (NoWindow: not; set
	// before the session is published, never written again;
	// compression.go).
	window deflate.Window
}

// subState is a subscribed session's state. subs is worker-only; mu
// guards the rest, which fan-out goroutines read in Enqueue. Lock order:
// subState.mu before conn.mu (doc.go).
type subState struct {
	id   string   // the client id, once a subscription may need it often
	subs []string // channels, ≤ MaxChannelsPerConn

	mu sync.Mutex
	// recovering: per channel, the live frames held back while a subscribe
	// waits for the broker (its position, and a resume's history).
	recovering map[string]*recovery
	// resumedTop: per channel just resumed, the last replayed position,
	// until a newer live publication arrives.
	resumedTop map[string]holdback.Position
}

func newSession(t transport, srv *Server, enc codec.Encoding, seq uint64, fd int, identity Identity) *session {
	s := &session{t: t, srv: srv, enc: enc, seq: seq, fd: int32(fd),
		limiter: newLimiter(srv.cfg.CommandBurst, srv.now())}
	if identity.UserID != "" || identity.Channels != nil || !identity.ExpiresAt.IsZero() {
		s.ident = &identity
	}
	return s
}

// identity is who the client is.
func (s *session) identity() Identity {
	if s.ident == nil {
		return Identity{}
	}
	return *s.ident
}

// userID is the client's user id ("": anonymous).
func (s *session) userID() string {
	if s.ident == nil {
		return ""
	}
	return s.ident.UserID
}

// id is the client id (see clientID); a subscribed session keeps it.
func (s *session) id() string {
	if s.sub != nil {
		return s.sub.id
	}
	return clientID(s.srv.cfg.NodeID, s.seq, int(s.fd))
}

// subscribed returns the session's subscription state, allocating it.
func (s *session) subscribed() *subState {
	if s.sub == nil {
		s.sub = &subState{id: s.id()}
	}
	return s.sub
}

// DeflateWindow implements hub.Deflater: what the connection negotiated
// for permessage-deflate, so the hub sends it the compressed frames that
// fit its window.
func (s *session) DeflateWindow() deflate.Window { return s.window }

// Encoding implements hub.Subscriber.
func (s *session) Encoding() codec.Encoding { return s.enc }

// Enqueue implements hub.Subscriber: it queues a run of one channel's
// frames under one lock. Live frames of a channel being recovered are held
// back (counted against the queue limit) until its history has been
// queued; right after a resume, replayed offsets are dropped. A connection
// is not sent its own join/leave events (it has its subscribe/unsubscribe
// reply instead).
func (s *session) Enqueue(pubs []*codec.Publication, frames [][]byte) bool {
	u := s.sub // set before the first hub.Subscribe, never reset
	u.mu.Lock()
	defer u.mu.Unlock()
	var keep [][]byte // what goes out, once a frame was left out
	filtered, held := false, 0
	for i, p := range pubs {
		ok, h := u.admitLocked(p, frames[i])
		switch {
		case !ok && !filtered:
			keep, filtered = append(make([][]byte, 0, len(frames)), frames[:i]...), true
		case ok && filtered:
			keep = append(keep, frames[i])
		}
		held = max(held, h) // one channel: the recovery's running total
	}
	if !filtered {
		keep = frames
	}
	if held > 0 && s.t.overLimit(held) {
		return true // closing as a slow consumer: the flush sends the close
	}
	return len(keep) > 0 && s.t.enqueue(keep)
}

// admitLocked says whether p's frame goes out now; if not, held is the
// frame bytes it holds back for a channel being recovered (0: dropped).
func (u *subState) admitLocked(p *codec.Publication, frame []byte) (ok bool, held int) {
	event := p.Kind != codec.KindPublication
	if event && string(p.Client) == u.id {
		return false, 0
	}
	if top, found := u.resumedTop[string(p.Channel)]; found {
		// Right after a resume, Pub/Sub may still bring publications the
		// history read already replayed: drop those, once.
		if !event && top.Judge(p.Epoch, p.Offset) == holdback.Covered {
			return false, 0
		}
		deleteKey(&u.resumedTop, string(p.Channel))
	}
	if r := u.recovering[string(p.Channel)]; r != nil {
		offset := p.Offset
		if event {
			offset = 0 // history never covers an event: always released
		}
		return false, r.Hold(p.Epoch, offset, frame, len(frame))
	}
	return true, 0
}

// deleteKey deletes k from *m and drops the map once it is empty: a
// session holds these maps only while a subscribe or a resume needs them
// (an empty map would cost every such connection a few hundred bytes).
func deleteKey[V any](m *map[string]V, k string) {
	delete(*m, k)
	if len(*m) == 0 {
		*m = nil
	}
}

// Flush implements hub.Subscriber.
func (s *session) Flush() { s.t.flush() }

// onMessage runs one client command. The frame must match the negotiated
// encoding (binary for MessagePack, text for JSON); a frame that is not a
// command at all closes the connection with 1007, a bad command whose id
// could be read gets an error reply.
func (s *session) onMessage(op wsframe.Opcode, payload []byte) error {
	if op != wsframe.OpcodeFor(s.enc) {
		return &wsframe.Error{Code: wsframe.CloseUnsupported, Reason: "wrong frame type for the subprotocol"}
	}
	var cmd codec.Command
	limits := codec.Limits{MaxChannelBytes: s.srv.cfg.MaxChannelBytes, MaxDataBytes: s.srv.cfg.MaxPublicationBytes}
	if err := limits.DecodeCommand(s.enc, payload, &cmd); err != nil {
		var derr *codec.DecodeError
		if errors.As(err, &derr) && derr.IDKnown {
			s.reply(codec.AppendError(nil, s.enc, derr.ID, derr.Code, derr.Message()))
			return nil
		}
		return &wsframe.Error{Code: wsframe.CloseInvalidPayload, Reason: "undecodable command"}
	}
	if !s.allowCommand(cmd.ID) {
		return s.rateLimitError()
	}
	s.run(&cmd)
	return nil
}

// run dispatches a decoded command.
func (s *session) run(cmd *codec.Command) {
	switch cmd.Cmd {
	case codec.CmdPing:
		s.replyOK(codec.Reply{ID: cmd.ID, Cmd: codec.CmdPing})
	case codec.CmdSubscribe:
		s.subscribe(cmd)
	case codec.CmdUnsubscribe:
		s.unsubscribe(cmd)
	case codec.CmdPublish:
		s.publish(cmd)
	case codec.CmdHistory:
		s.history(cmd)
	case codec.CmdPresence, codec.CmdPresenceStats:
		s.presence(cmd)
	case codec.CmdRefresh:
		s.refresh(cmd)
	default:
		s.replyError(cmd.ID, codec.CodeNotAvailable, "command not available")
	}
}

// allowCommand applies the command rate; a refused command gets error 107.
func (s *session) allowCommand(id uint32) bool {
	cfg := &s.srv.cfg
	if s.limiter.allow(s.srv.now(), cfg.CommandRate, cfg.CommandBurst) {
		return true
	}
	s.srv.metrics.RateLimited.Add(1)
	if s.limiter.denied <= int32(cfg.CommandBurst) {
		s.replyError(id, codec.CodeRateLimited, "rate limited: slow down")
	}
	return false
}

// rateLimitError closes a connection that stayed over its rate for a
// whole burst of refusals (it is not slowing down), else lets it go on.
func (s *session) rateLimitError() error {
	if s.limiter.denied > int32(s.srv.cfg.CommandBurst) {
		return &wsframe.Error{Code: CloseRateLimited, Reason: "rate limit exceeded"}
	}
	return nil
}

func (s *session) replyError(id uint32, code codec.ErrorCode, msg string) {
	s.reply(codec.AppendError(nil, s.enc, id, code, msg))
}

// replyOK queues a success reply — unless the command's id was 0: "no
// reply wanted" (codec/README.md §3; errors are replied to all the same).
func (s *session) replyOK(r codec.Reply) {
	if r.ID != 0 {
		s.reply(codec.AppendReply(nil, s.enc, r))
	}
}

// replyOKAsync is replyOK for broker callbacks (see replyAsync).
func (s *session) replyOKAsync(r codec.Reply) {
	if r.ID != 0 {
		s.replyAsync(codec.AppendReply(nil, s.enc, r))
	}
}

// reply frames an encoded reply and queues it (flushed after the read batch).
func (s *session) reply(payload []byte) { s.t.send(s.frame(payload)) }

// replyAsync is reply for broker callbacks, which may run on this
// connection's worker (memory broker) or on another goroutine (Redis).
func (s *session) replyAsync(payload []byte) { s.t.write(s.frame(payload)) }

// frame wraps an encoded payload in a WebSocket frame of the session's type.
func (s *session) frame(payload []byte) []byte {
	if s.window.Negotiated() {
		return dataFrame(wsframe.OpcodeFor(s.enc), payload, s.window, s.srv.cfg.CompressionMinBytes)
	}
	return wsframe.Frame(wsframe.OpcodeFor(s.enc), payload)
}

// checkExpiry asks a connection whose token expired to refresh (a push of
// type "refresh") and closes it with 4004 when RefreshGrace passes without
// one. It returns the next time it needs to look (zero: never) and false
// when it closed the connection. Worker only; the transport flushes.
func (s *session) checkExpiry(now time.Time) (time.Time, bool) {
	if s.ident == nil {
		return time.Time{}, true
	}
	exp := s.ident.ExpiresAt
	switch {
	case exp.IsZero():
		return time.Time{}, true
	case now.Before(exp):
		return exp, true
	case now.Before(exp.Add(s.srv.cfg.RefreshGrace)):
		if !s.asked {
			s.asked = true
			s.t.send(s.frame(codec.AppendRefresh(nil, s.enc)))
		}
		return exp.Add(s.srv.cfg.RefreshGrace), true
	}
	s.srv.metrics.TokenExpired.Add(1)
	s.t.close(CloseTokenExpired, "token expired")
	return time.Time{}, false
}

// closed unsubscribes a closed connection from every channel. It runs
// without the connection's lock: the hub may take a connection's lock
// under its own (repairs, subscribe answers), so never the reverse.
func (s *session) closed() {
	if s.sub == nil {
		return
	}
	for _, ch := range s.sub.subs {
		s.leave(ch, nil)
	}
	s.sub.subs = nil
}

// leave drops the session from channel in the hub and, where presence is
// on, in presence; where join_leave is on, it tells the channel's
// subscribers on every instance (a leave push).
//
// tell, when not nil, is the frame that tells the client (the server
// API's unsubscribe push). A subscribe of channel still waiting for the
// broker is cancelled; when the server ends it (tell given), it is
// answered now with error 108 instead of tell (see endedByServerReply),
// and its broker answer, whenever it comes, sends nothing.
func (s *session) leave(channel string, tell []byte) {
	s.srv.hub.Unsubscribe(channel, s)
	u := s.sub
	u.mu.Lock()
	if r := u.recovering[channel]; r != nil && tell != nil {
		r.answered = true
		tell = s.endedByServerReply(r.id, channel)
	}
	deleteKey(&u.recovering, channel)
	deleteKey(&u.resumedTop, channel)
	u.mu.Unlock()
	if tell != nil {
		s.t.write(tell)
	}
	ns := s.srv.ns.For(channel)
	if ns.Presence {
		s.srv.presence.Leave(channel, u.id)
	}
	if ns.JoinLeave {
		s.srv.broker.PublishEvent(channel, codec.KindLeave, u.id, s.userID())
	}
}
