// Package drive puts load on a server over the client protocol:
// subscribers that measure publish→delivery latency from the stamp in
// every payload, and a publisher that stamps what it publishes. Both live
// in loadclient pools, so ten thousand subscribers cost the benchmark
// process a handful of goroutines.
package drive

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// Path is the client protocol endpoint of both designs.
const Path = "/ws"

// Phase collects the deliveries of one measurement window.
type Phase struct {
	// Latency of every delivery: receive time minus the stamp.
	Latency   hist.Hist
	firstSeq  uint64
	delivered atomic.Int64
	last      atomic.Int64 // Unix ns of the latest delivery
}

// Delivered returns the deliveries so far.
func (p *Phase) Delivered() int64 { return p.delivered.Load() }

// Last returns the time of the latest delivery (zero before the first).
func (p *Phase) Last() time.Time {
	n := p.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Subscribers is a pool of connections that count and time every message
// push they receive.
type Subscribers struct {
	pool  *loadclient.Pool
	phase atomic.Pointer[Phase]

	acks, ackErrs atomic.Int64 // subscribe replies
	// Pushes that could not be parsed, were not stamped, or belong to a
	// message published before the current phase.
	bad, stale        atomic.Int64
	pushes, pushBytes atomic.Int64
}

// DialSubscribers opens n connections to addr. Failed dials are in
// Stats; the error is for a pool that could not be made at all.
func DialSubscribers(ctx context.Context, addr string, n, dialsInFlight int) (*Subscribers, error) {
	s := &Subscribers{}
	pool, err := loadclient.Dial(ctx, loadclient.Config{
		Addr: addr, Path: Path, Conns: n, DialsInFlight: dialsInFlight, OnMessage: s.onMessage,
	})
	if err != nil {
		return nil, err
	}
	s.pool = pool
	return s, nil
}

func (s *Subscribers) onMessage(_ *loadclient.Conn, _ byte, payload []byte) {
	now := time.Now()
	p, err := wire.ParsePush(payload)
	if err != nil {
		s.bad.Add(1)
		return
	}
	switch {
	case p.IsMessage():
		s.pushes.Add(1)
		s.pushBytes.Add(int64(len(payload)))
		seq, sent, ok := wire.ParseStamp(p.Data)
		ph := s.phase.Load()
		switch {
		case !ok:
			s.bad.Add(1)
		case ph == nil || seq < ph.firstSeq:
			s.stale.Add(1)
		default:
			ph.Latency.Record(now.Sub(sent))
			ph.delivered.Add(1)
			ph.last.Store(now.UnixNano())
		}
	case p.IsReply():
		if p.HasError {
			s.ackErrs.Add(1)
		} else {
			s.acks.Add(1)
		}
	}
}

// SubscribeWindow bounds the subscribes awaiting a reply. With the Redis
// broker every subscribe reads the channel's position through a bounded
// queue per channel (4,096 deep in wsgate): ten thousand subscribes at
// once to one channel are partly refused with 111 (retry), which would
// measure that bound instead of fan-out.
const SubscribeWindow = 1024

// Subscribe subscribes connection i to channels[i % len(channels)] and
// waits until every upgraded connection's reply arrived (or timeout).
func (s *Subscribers) Subscribe(ctx context.Context, channels []string, timeout time.Duration) error {
	conns := s.pool.Conns()
	start := time.Now()
	answered := func() int64 { return s.acks.Load() + s.ackErrs.Load() }
	for i, c := range conns {
		if !waitUntil(ctx, timeout-time.Since(start), func() bool { return int64(i)-answered() < SubscribeWindow }) {
			break // the wait below reports what is missing
		}
		if err := c.Send(loadclient.OpBinary, wire.Subscribe(uint32(i+1), channels[i%len(channels)])); err != nil {
			return fmt.Errorf("subscribe conn %d: %w", c.Index(), err)
		}
	}
	want := int64(len(conns))
	ok := waitUntil(ctx, timeout-time.Since(start), func() bool { return answered() >= want })
	switch {
	case s.ackErrs.Load() > 0:
		return fmt.Errorf("%d of %d subscribes failed", s.ackErrs.Load(), want)
	case !ok:
		return fmt.Errorf("%d of %d subscribes answered after %v", s.acks.Load(), want, timeout)
	}
	return nil
}

// Begin starts a new phase: from now on, pushes stamped with a sequence
// of at least firstSeq count in it; older ones are stale.
func (s *Subscribers) Begin(firstSeq uint64) *Phase {
	p := &Phase{firstSeq: firstSeq}
	s.phase.Store(p)
	return p
}

// Subscribed returns how many connections are upgraded and subscribed.
func (s *Subscribers) Subscribed() int { return int(s.acks.Load()) }

// Anomalies returns the pushes that were unparsable or unstamped, and
// those from before the current phase.
func (s *Subscribers) Anomalies() (bad, stale int64) { return s.bad.Load(), s.stale.Load() }

// MeanPushBytes is the mean payload size of the message pushes received.
func (s *Subscribers) MeanPushBytes() float64 {
	n := s.pushes.Load()
	if n == 0 {
		return 0
	}
	return float64(s.pushBytes.Load()) / float64(n)
}

// Stats returns the pool's stats (dials, closes).
func (s *Subscribers) Stats() loadclient.Stats { return s.pool.Stats() }

// Close closes every connection.
func (s *Subscribers) Close() error { return s.pool.Close() }

// Window bounds the publishes awaiting a reply. Every publish is answered,
// and a server may bound the replies queued for one connection (the naive
// server closes a connection with 256 frames queued as a slow consumer):
// a publisher that sends a thousand publishes back to back would be
// measuring that bound, not fan-out.
const Window = 128

// windowWait bounds how long Publish waits for room in the window.
const windowWait = 10 * time.Second

// Publisher publishes stamped payloads on one connection.
type Publisher struct {
	pool        *loadclient.Pool
	conn        *loadclient.Conn
	data        []byte
	seq         uint64
	ok, errs    atomic.Int64
	dataBytesFn func(channel string) int
}

// DialPublisher opens the publisher's connection. dataBytes is the
// payload size (0: what makes an 80-byte push on the channel published to).
func DialPublisher(ctx context.Context, addr string, dataBytes int) (*Publisher, error) {
	p := &Publisher{}
	if dataBytes > 0 {
		p.dataBytesFn = func(string) int { return dataBytes }
	} else {
		p.dataBytesFn = wire.DataBytes
	}
	pool, err := loadclient.Dial(ctx, loadclient.Config{Addr: addr, Path: Path, Conns: 1,
		OnMessage: func(_ *loadclient.Conn, _ byte, payload []byte) {
			r, err := wire.ParsePush(payload)
			switch {
			case err != nil || !r.IsReply():
				// Only replies are expected: the publisher subscribes to nothing.
			case r.HasError:
				p.errs.Add(1)
			default:
				p.ok.Add(1)
			}
		}})
	if err != nil {
		return nil, err
	}
	p.pool = pool
	conns := pool.Conns()
	if len(conns) != 1 {
		pool.Close()
		return nil, fmt.Errorf("publisher did not connect: %s", pool.Stats().FirstError)
	}
	p.conn = conns[0]
	return p, nil
}

// Publish stamps the next sequence number and the current time into a
// payload and publishes it on channel. It waits while Window publishes
// are unanswered.
func (p *Publisher) Publish(channel string) error {
	if !waitUntil(context.Background(), windowWait, func() bool {
		ok, errs := p.Replies()
		return int64(p.seq)-ok-errs < Window
	}) {
		return fmt.Errorf("publish: %d publishes unanswered for %v", Window, windowWait)
	}
	n := p.dataBytesFn(channel)
	if len(p.data) != n {
		p.data = wire.NewData(n)
	}
	wire.Stamp(p.data, p.seq, time.Now())
	p.seq++
	// id = seq+1 ≠ 0: a reply (with any error) comes back for each.
	return p.conn.Send(loadclient.OpBinary, wire.Publish(uint32(p.seq), channel, p.data))
}

// Seq is the sequence number the next Publish will use.
func (p *Publisher) Seq() uint64 { return p.seq }

// Replies returns the publish replies received: accepted and refused.
func (p *Publisher) Replies() (ok, errs int64) { return p.ok.Load(), p.errs.Load() }

// Closed returns the close codes the server ended the publisher's
// connection with (empty while it is open).
func (p *Publisher) Closed() map[int]int {
	if st := p.pool.Stats(); st.Closed > 0 {
		return st.Closes
	}
	return nil
}

// Close closes the connection.
func (p *Publisher) Close() error { return p.pool.Close() }

// WaitDeliveries waits until want() deliveries arrived in ph, or nothing
// arrived for stall, or ctx ends; it reports whether want was reached.
// want is re-evaluated (publish replies may still be coming in).
func WaitDeliveries(ctx context.Context, ph *Phase, want func() int64, stall time.Duration) bool {
	last, lastChange := ph.Delivered(), time.Now()
	for {
		d := ph.Delivered()
		if d >= want() {
			return true
		}
		if d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > stall {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitUntil polls cond until it holds, timeout passes or ctx ends. It
// polls fast at first (a publish window usually opens within
// microseconds), then every 5 ms.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	start := time.Now()
	for i := 0; !cond(); i++ {
		if time.Since(start) > timeout || ctx.Err() != nil {
			return false
		}
		if i < 100 {
			time.Sleep(50 * time.Microsecond)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return true
}
