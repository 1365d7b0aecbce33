package pubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
)

// Backoff after a publish answered with 107 (the gateway's delivery queue
// was full): it starts short, doubles with each new overload episode and
// halves with each accepted publish; with the window halved on overload
// and regrown slowly (see grow), a publisher settles near the rate the
// gateway drains at instead of hammering it with publishes it must refuse.
const (
	minBackoff = time.Millisecond
	maxBackoff = 50 * time.Millisecond
)

// tally is what a channel got accepted: how many publications and the sum
// of their pubHash.
type tally struct {
	count uint64
	hash  uint64
}

// attempt is one publish in flight.
type attempt struct {
	k       int // logical publication (0 … quota-1), kept across retries
	channel int
	seq     uint64
}

// pubReply is a publish reply as the publisher's goroutine needs it.
type pubReply struct {
	id   uint32
	code uint32
	msg  string
}

// publisher owns one connection and runs on its own goroutine; the
// connection's OnMessage only decodes replies and hands them over.
type publisher struct {
	id       int
	quota    int // logical publications to get accepted
	window   int // the most publishes in flight (1 in lockstep)
	channels int
	names    [][]byte
	size     int
	conn     *loadclient.Conn

	replies   chan pubReply // capacity ≥ window: the callback never blocks
	stop      chan struct{} // closed by abort
	stopOnce  sync.Once
	stopCause error // set before stop is closed

	// Owned by run; read after it returns.
	tallies  []tally // by channel
	retries  uint64
	accepted int
	err      error

	// run's working state.
	seq        uint64
	nextID     uint32
	inflight   map[uint32]attempt
	retry      []int // logical publications to send again, oldest first
	next       int   // next logical publication never sent
	backoff    time.Duration
	resumeAt   time.Time
	cwnd       int    // publishes allowed in flight now, ≤ window
	acked      int    // accepted since cwnd last grew
	pace       *pacer // nil: no flow control
	pacedUntil time.Time
	payload    []byte
	cmd        []byte
}

func newPublisher(id, quota int, cfg *Config, names [][]byte, pace *pacer) *publisher {
	w := cfg.window()
	return &publisher{id: id, quota: quota, window: w, cwnd: w, pace: pace, channels: cfg.Channels, names: names,
		size: cfg.Size, replies: make(chan pubReply, w+8), stop: make(chan struct{}),
		tallies: make([]tally, cfg.Channels), inflight: make(map[uint32]attempt, w)}
}

// onMessage decodes a reply on the event loop and passes it on.
func (p *publisher) onMessage(op byte, payload []byte) {
	if op != loadclient.OpBinary {
		p.abort(fmt.Errorf("publisher %d: opcode %d", p.id, op))
		return
	}
	f, err := wire.ParsePush(payload)
	if err != nil {
		p.abort(fmt.Errorf("publisher %d: undecodable frame (%d bytes)", p.id, len(payload)))
		return
	}
	if !f.IsReply() {
		return // a push: publishers subscribe to nothing, but pushes are harmless
	}
	select {
	case p.replies <- pubReply{id: uint32(f.ID), code: uint32(f.ErrorCode), msg: string(f.ErrorMessage)}:
	default:
		p.abort(fmt.Errorf("publisher %d: more replies than publishes in flight", p.id))
	}
}

func (p *publisher) onClose(code int) {
	p.abort(fmt.Errorf("publisher %d: connection closed with %d", p.id, code))
}

// abort stops run with cause (the first cause wins).
func (p *publisher) abort(cause error) {
	p.stopOnce.Do(func() {
		p.stopCause = cause
		close(p.stop)
	})
}

// run publishes until quota publications are accepted, ctx ends or the
// connection fails; the outcome is in p.err, p.tallies and p.retries.
func (p *publisher) run(ctx context.Context) {
	p.payload = newPayload(p.size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for p.accepted < p.quota {
		hold, err := p.fill()
		if err != nil {
			p.err = err
			return
		}
		var wake <-chan time.Time
		if !hold.IsZero() {
			timer.Reset(time.Until(hold)) // fires at once if hold has passed
			wake = timer.C
		}
		select {
		case r := <-p.replies:
			if err := p.onReply(r); err != nil {
				p.err = err
				return
			}
		case <-wake:
		case <-p.stop:
			p.err = p.stopCause
			return
		case <-ctx.Done():
			p.err = fmt.Errorf("publisher %d: %d of %d accepted: %w", p.id, p.accepted, p.quota, context.Cause(ctx))
			return
		}
		timer.Stop()
	}
}

// hasWork reports whether a publication waits to be sent.
func (p *publisher) hasWork() bool { return len(p.retry) > 0 || p.next < p.quota }

// holdUntil is when the backoff or the pacer lets the publisher send again.
func (p *publisher) holdUntil() time.Time {
	if p.pacedUntil.After(p.resumeAt) {
		return p.pacedUntil
	}
	return p.resumeAt
}

// fill sends until the window is full, the work is done, a backoff holds
// or the pacer says the readers are too far behind. In the last two cases
// it returns when to try again; the caller must wake up then even if no
// reply arrives (nothing may be in flight), so the decision is made here,
// once, and not re-derived from the clock later.
func (p *publisher) fill() (hold time.Time, err error) {
	for len(p.inflight) < p.cwnd && p.hasWork() {
		if h := p.holdUntil(); time.Now().Before(h) {
			return h, nil
		}
		k, fromRetry := p.next, false
		if len(p.retry) > 0 {
			k, fromRetry = p.retry[0], true
		}
		if !p.pace.allow(p.channelOf(k)) {
			p.pacedUntil = time.Now().Add(paceEvery)
			return p.pacedUntil, nil
		}
		if fromRetry {
			p.retry = p.retry[1:]
		} else {
			p.next++
		}
		if err := p.send(k); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, nil
}

// channelOf is logical publication k's channel: round-robin, so every
// publisher covers every channel and every channel hears every publisher.
func (p *publisher) channelOf(k int) int { return (p.id + k) % p.channels }

// send publishes logical publication k as a new attempt: a fresh sequence
// number, so sequences grow in the order attempts are sent even when a
// retried publication follows ones sent after its first attempt.
func (p *publisher) send(k int) error {
	ch := p.channelOf(k)
	p.seq++
	p.nextID++
	header{publisher: uint32(p.id), channel: uint32(ch), seq: p.seq, sentNanos: time.Now().UnixNano()}.put(p.payload)
	cmd := codec.Command{ID: p.nextID, Cmd: codec.CmdPublish, Channel: p.names[ch], Data: p.payload}
	var err error
	if p.cmd, err = codec.AppendCommand(p.cmd[:0], codec.Msgpack, &cmd); err != nil {
		return fmt.Errorf("publisher %d: encode: %w", p.id, err)
	}
	if err := p.conn.Send(loadclient.OpBinary, p.cmd); err != nil {
		return fmt.Errorf("publisher %d: send: %w", p.id, err)
	}
	p.inflight[p.nextID] = attempt{k: k, channel: ch, seq: p.seq}
	p.pace.sentOne(ch)
	return nil
}

// grow widens the window by one per window's worth of accepted publishes
// (TCP's additive increase; a 107 halves it): a burst keeps the gateway's
// queue full without burying it in publishes it can only refuse.
func (p *publisher) grow() {
	p.acked++
	if p.cwnd < p.window && p.acked >= p.cwnd {
		p.cwnd++
		p.acked = 0
	}
}

// errRateLimited is the reply code that means "not accepted, retry".
const errRateLimited = uint32(codec.CodeRateLimited)

func (p *publisher) onReply(r pubReply) error {
	a, ok := p.inflight[r.id]
	if !ok {
		return fmt.Errorf("publisher %d: reply to unknown id %d", p.id, r.id)
	}
	delete(p.inflight, r.id)
	switch r.code {
	case 0:
		p.accepted++
		t := &p.tallies[a.channel]
		t.count++
		t.hash += pubHash(uint32(p.id), a.seq)
		p.backoff /= 2
		p.grow()
	case errRateLimited:
		p.retries++
		p.retry = append(p.retry, a.k)
		p.pace.refused(a.channel)
		// Replies to the rest of an overloaded window arrive together:
		// only the first of them extends the pause.
		if now := time.Now(); !now.Before(p.resumeAt) {
			p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
			p.resumeAt = now.Add(p.backoff)
			p.cwnd = max(p.cwnd/2, 1)
			p.acked = 0
		}
	default:
		return fmt.Errorf("publisher %d: publish to %s failed: %d %s", p.id, p.names[a.channel], r.code, r.msg)
	}
	return nil
}
