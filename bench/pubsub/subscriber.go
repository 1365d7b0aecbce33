package pubsub

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// subscribeID is the command id of every subscriber's one subscribe.
const subscribeID = 1

// subscriber is one reading subscriber.
//
// Concurrency: loadclient calls OnMessage and OnClose for one connection
// on one event-loop worker at a time, and every dispatch starts and ends
// under the connection's mutex, so successive callbacks are ordered by
// happens-before even when they run on different workers. The fields
// below "callback-owned" are therefore touched without locks by the
// callbacks, and read by verify only after the pool is closed (Pool.Close
// returns after the last callback). Other goroutines read only the
// atomics.
type subscriber struct {
	index   int
	channel int
	json    bool
	sh      *shared

	// Callback-owned.
	subscribed       bool
	lastSeq          []uint64 // by publisher
	lastOffset       uint64
	hash             uint64 // sum of pubHash over received publications
	dups, outOfOrder uint64
	offsetViolations uint64
	crossChannel     uint64
	badFrames        uint64
	b64              []byte // JSON subscribers: decoding buffer

	received  atomic.Uint64 // publications of its channel, duplicates included
	announced atomic.Uint64 // publications announced lost by gap pushes
	closeCode atomic.Int32  // 0 while open
}

// shared is what all subscribers of a run refer to.
type shared struct {
	size       int
	publishers int
	names      [][]byte // channel names by index
	hist       histogram
	subscribes *countdown
	problems   problems
}

func newSubscriber(index, channel int, json bool, sh *shared) *subscriber {
	return &subscriber{index: index, channel: channel, json: json, sh: sh,
		lastSeq: make([]uint64, sh.publishers)}
}

// onMessage handles one server frame (a loadclient OnMessage callback).
func (s *subscriber) onMessage(op byte, payload []byte) {
	now := time.Now().UnixNano() // first: the frame's decoding is latency too
	f, err := s.decode(op, payload)
	if err != nil {
		s.bad("undecodable frame: %v (%d bytes)", err, len(payload))
		return
	}
	switch {
	case f.IsMessage():
		s.onPublication(&f, now)
	case f.IsReply():
		s.onReply(&f)
	case f.IsGap():
		if f.To >= f.From {
			s.announced.Add(f.To - f.From + 1)
		}
	}
}

func (s *subscriber) decode(op byte, payload []byte) (wire.Push, error) {
	if s.json {
		if op != loadclient.OpText {
			return wire.Push{}, fmt.Errorf("opcode %d on a JSON connection", op)
		}
		return wire.ParsePushJSON(payload)
	}
	if op != loadclient.OpBinary {
		return wire.Push{}, fmt.Errorf("opcode %d on a MessagePack connection", op)
	}
	return wire.ParsePush(payload)
}

func (s *subscriber) onReply(f *wire.Push) {
	switch {
	case f.ID != subscribeID || s.subscribed:
		s.bad("unexpected reply id %d", f.ID)
	case f.HasError:
		s.subscribed = true
		s.sh.problems.add(fmt.Sprintf("subscriber %d: subscribe failed: %d %s", s.index, f.ErrorCode, f.ErrorMessage))
		s.sh.subscribes.fail()
	default:
		s.subscribed = true
		// Everything published later must come after the subscribe point.
		s.lastOffset = f.Offset
		s.sh.subscribes.done()
	}
}

// onPublication runs the per-message checks; it must stay cheap, it runs
// millions of times on the event loop.
func (s *subscriber) onPublication(f *wire.Push, now int64) {
	if !bytes.Equal(f.Channel, s.sh.names[s.channel]) {
		s.crossChannel++
		return
	}
	data, err := s.published(f)
	if err != nil {
		s.bad("publication data: %v", err)
		return
	}
	h, ok := parsePayload(data, s.sh.size)
	switch {
	case !ok:
		s.bad("publication payload of %d bytes is not one of ours", len(data))
		return
	case int(h.channel) != s.channel:
		s.crossChannel++
		return
	case int(h.publisher) >= s.sh.publishers:
		s.bad("publication from unknown publisher %d", h.publisher)
		return
	}
	s.received.Add(1)
	s.sh.hist.record(s.index, time.Duration(now-h.sentNanos))
	if f.Offset != 0 { // 0: the server keeps no history position
		if f.Offset <= s.lastOffset {
			s.offsetViolations++
		} else {
			s.lastOffset = f.Offset
		}
	}
	last := &s.lastSeq[h.publisher]
	switch {
	case h.seq == *last:
		s.dups++
	case h.seq < *last:
		s.outOfOrder++
		s.hash += pubHash(h.publisher, h.seq)
	default:
		*last = h.seq
		s.hash += pubHash(h.publisher, h.seq)
	}
}

// published returns the published bytes of a message push: MessagePack
// "data", JSON "b64" decoded, or JSON "data" as its raw text.
func (s *subscriber) published(f *wire.Push) ([]byte, error) {
	if f.B64 == nil {
		return f.Data, nil
	}
	n := base64.StdEncoding.DecodedLen(len(f.B64))
	if cap(s.b64) < n {
		s.b64 = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(s.b64[:n], f.B64)
	return s.b64[:n], err
}

// onClose records how the connection ended; a subscriber closed before its
// subscribe reply fails the subscribe phase instead of stalling it.
func (s *subscriber) onClose(code int) {
	s.closeCode.Store(int32(code))
	if !s.subscribed {
		s.subscribed = true
		s.sh.problems.add(fmt.Sprintf("subscriber %d: closed with %d before its subscribe reply", s.index, code))
		s.sh.subscribes.fail()
	}
}

func (s *subscriber) bad(format string, args ...any) {
	s.badFrames++
	if s.badFrames == 1 { // one report per subscriber is plenty
		s.sh.problems.add(fmt.Sprintf("subscriber %d: ", s.index) + fmt.Sprintf(format, args...))
	}
}

// countdown is closed when n events happened; failures count too, so a
// wait on it always ends.
type countdown struct {
	left   atomic.Int64
	failed atomic.Int64
	ch     chan struct{}
}

func newCountdown(n int) *countdown {
	c := &countdown{ch: make(chan struct{})}
	c.left.Store(int64(n))
	if n == 0 {
		close(c.ch)
	}
	return c
}

func (c *countdown) done() {
	if c.left.Add(-1) == 0 {
		close(c.ch)
	}
}

func (c *countdown) fail() {
	c.failed.Add(1)
	c.done()
}

// problems keeps the first few problem descriptions of a run for its
// verdict; later ones are only counted.
type problems struct {
	mu    sync.Mutex
	first []string
	n     int
}

const maxProblems = 5

func (p *problems) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if len(p.first) < maxProblems {
		p.first = append(p.first, s)
	}
}

func (p *problems) snapshot() (first []string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.first...), p.n
}
