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

// Path is the client protocol endpoint of wsgate and the naive server.
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
	dialect Dialect
	pool    *loadclient.Pool
	phase   atomic.Pointer[Phase]

	replies, replyErrs atomic.Int64 // replies to connect and subscribe commands
	subscribed         int64        // subscribe replies without an error
	// Pushes that could not be parsed, were not stamped, or belong to a
	// message published before the current phase.
	bad, stale        atomic.Int64
	pushes, pushBytes atomic.Int64
	appPings          atomic.Int64 // application-level pings answered (Centrifugo's)
}

// DialSubscribers opens n connections to addr that speak d, and sends each
// upgraded one d's connect command when it has one, waiting for the
// replies (timeout bounds that wait). Failed dials are in Stats; the error
// is for a pool that could not be made at all, or connects that failed.
func DialSubscribers(ctx context.Context, d Dialect, addr string, n, dialsInFlight int, timeout time.Duration) (*Subscribers, error) {
	return DialSubscribersWith(ctx, d, addr, n, dialsInFlight, timeout, Options{})
}

// Options are the less common subscriber settings.
type Options struct {
	// Compression offers permessage-deflate on every connection.
	Compression bool
}

// DialSubscribersWith is DialSubscribers with options.
func DialSubscribersWith(ctx context.Context, d Dialect, addr string, n, dialsInFlight int, timeout time.Duration, o Options) (*Subscribers, error) {
	s := &Subscribers{dialect: d}
	pool, err := loadclient.Dial(ctx, loadclient.Config{
		Addr: addr, Path: d.Path(), Conns: n, DialsInFlight: dialsInFlight, OnMessage: s.onMessage,
		Compression: o.Compression,
	})
	if err != nil {
		return nil, err
	}
	s.pool = pool
	if d.Connect(1) == nil {
		return s, nil
	}
	if _, err := s.command(ctx, "connect", timeout, func(i int, _ string) []byte { return d.Connect(uint32(i + 1)) }, nil); err != nil {
		return s, err
	}
	return s, nil
}

func (s *Subscribers) onMessage(c *loadclient.Conn, _ byte, payload []byte) {
	now := time.Now()
	err := s.dialect.Read(payload, func(f Frame) {
		switch f.Kind {
		case KindMessage:
			s.pushes.Add(1)
			s.pushBytes.Add(int64(f.Bytes))
			ph := s.phase.Load()
			switch {
			case !f.Stamped:
				s.bad.Add(1)
			case ph == nil || f.Seq < ph.firstSeq:
				s.stale.Add(1)
			default:
				ph.Latency.Record(now.Sub(f.Sent))
				ph.delivered.Add(1)
				ph.last.Store(now.UnixNano())
			}
		case KindReply:
			if f.Failed {
				s.replyErrs.Add(1)
			} else {
				s.replies.Add(1)
			}
		case KindPing:
			s.appPings.Add(1)
			// A closing connection refuses; its close is counted anyway.
			_ = c.Send(s.dialect.Opcode(), f.Pong)
		}
	})
	if err != nil {
		s.bad.Add(1)
	}
}

// SubscribeWindow bounds the subscribes awaiting a reply. With the Redis
// broker every subscribe reads the channel's position through a bounded
// queue per channel (4,096 deep in wsgate): ten thousand subscribes at
// once to one channel are partly refused with 111 (retry), which would
// measure that bound instead of fan-out. Connect commands use the same
// window.
const SubscribeWindow = 1024

// Subscribe subscribes connection i to channels[i % len(channels)] and
// waits until every upgraded connection's reply arrived (or timeout).
func (s *Subscribers) Subscribe(ctx context.Context, channels []string, timeout time.Duration) error {
	ok, err := s.command(ctx, "subscribe", timeout, func(i int, ch string) []byte { return s.dialect.Subscribe(uint32(i+1), ch) }, channels)
	s.subscribed += ok
	return err
}

// command sends msg(i, channel) to every connection, keeping at most
// SubscribeWindow unanswered, and waits until every one was answered (or
// timeout). It returns the replies without an error.
func (s *Subscribers) command(ctx context.Context, name string, timeout time.Duration, msg func(i int, channel string) []byte, channels []string) (int64, error) {
	conns := s.pool.Conns()
	ok0, errs0 := s.replies.Load(), s.replyErrs.Load()
	answered := func() int64 { return s.replies.Load() - ok0 + s.replyErrs.Load() - errs0 }
	start := time.Now()
	for i, c := range conns {
		if !waitUntil(ctx, timeout-time.Since(start), func() bool { return int64(i)-answered() < SubscribeWindow }) {
			break // the wait below reports what is missing
		}
		ch := ""
		if len(channels) > 0 {
			ch = channels[i%len(channels)]
		}
		if err := c.Send(s.dialect.Opcode(), msg(i, ch)); err != nil {
			return s.replies.Load() - ok0, fmt.Errorf("%s conn %d: %w", name, c.Index(), err)
		}
	}
	want := int64(len(conns))
	done := waitUntil(ctx, timeout-time.Since(start), func() bool { return answered() >= want })
	ok, failed := s.replies.Load()-ok0, s.replyErrs.Load()-errs0
	switch {
	case failed > 0:
		return ok, fmt.Errorf("%d of %d %ss failed", failed, want, name)
	case !done:
		return ok, fmt.Errorf("%d of %d %ss answered after %v", ok, want, name, timeout)
	}
	return ok, nil
}

// Begin starts a new phase: from now on, pushes stamped with a sequence
// of at least firstSeq count in it; older ones are stale.
func (s *Subscribers) Begin(firstSeq uint64) *Phase {
	p := &Phase{firstSeq: firstSeq}
	s.phase.Store(p)
	return p
}

// Subscribed returns how many subscribes were answered without an error.
func (s *Subscribers) Subscribed() int { return int(s.subscribed) }

// Anomalies returns the pushes that were unparsable or unstamped, and
// those from before the current phase.
func (s *Subscribers) Anomalies() (bad, stale int64) { return s.bad.Load(), s.stale.Load() }

// MeanPushBytes is the mean size of the message frames received.
func (s *Subscribers) MeanPushBytes() float64 {
	n := s.pushes.Load()
	if n == 0 {
		return 0
	}
	return float64(s.pushBytes.Load()) / float64(n)
}

// BytesIn returns the bytes the subscribers have read from their sockets.
func (s *Subscribers) BytesIn() uint64 { return s.pool.Counts().BytesIn }

// Stats returns the pool's stats (dials, closes).
func (s *Subscribers) Stats() loadclient.Stats { return s.pool.Stats() }

// PingsAnswered counts the server's pings the connections answered:
// WebSocket pings, and the application-level pings of a protocol that
// has them (Centrifugo's), whichever the server sends.
func (s *Subscribers) PingsAnswered() uint64 {
	return s.pool.Stats().PingsIn + uint64(s.appPings.Load())
}

// Close closes every connection.
func (s *Subscribers) Close() error { return s.pool.Close() }

// Publisher publishes stamped payloads (wire.Stamp) through a design's
// publishing path: a client connection for wsgate and naive, the HTTP API
// for Centrifugo.
type Publisher interface {
	// Publish publishes one message on each channel, in order, each
	// stamped with the next sequence number and the time it is sent.
	Publish(channels ...string) error
	// Seq is the sequence number the next message will carry.
	Seq() uint64
	// Replies returns the publishes accepted and refused so far.
	Replies() (ok, errs int64)
	// Failure says why the publishing path broke (the server closed the
	// connection, a request failed); nil while it works.
	Failure() error
	Close() error
}

// Window bounds the publishes awaiting a reply. Every publish is answered,
// and a server may bound the replies queued for one connection (the naive
// server closes a connection with 256 frames queued as a slow consumer):
// a publisher that sends a thousand publishes back to back would be
// measuring that bound, not fan-out.
const Window = 128

// windowWait bounds how long Publish waits for room in the window.
const windowWait = 10 * time.Second

// SocketPublisher publishes on one client connection (wsgate's protocol).
type SocketPublisher struct {
	pool        *loadclient.Pool
	conn        *loadclient.Conn
	data        []byte
	seq         uint64
	ok, errs    atomic.Int64
	dataBytesFn func(channel string) int
	document    bool // publish wire.Document (stamped) instead of padding
}

// UseDocument makes every later publication the stamped JSON document
// (wire.Document) instead of padding: the compressible payload.
func (p *SocketPublisher) UseDocument() { p.document, p.data = true, nil }

// DialPublisher opens the publisher's connection. dataBytes is the
// payload size (0: what makes an 80-byte push on the channel published to).
func DialPublisher(ctx context.Context, addr string, dataBytes int) (*SocketPublisher, error) {
	p := &SocketPublisher{}
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

// Publish implements Publisher. It waits while Window publishes are
// unanswered.
func (p *SocketPublisher) Publish(channels ...string) error {
	for _, ch := range channels {
		if err := p.publish(ch); err != nil {
			return err
		}
	}
	return nil
}

func (p *SocketPublisher) publish(channel string) error {
	if !waitUntil(context.Background(), windowWait, func() bool {
		ok, errs := p.Replies()
		return int64(p.seq)-ok-errs < Window
	}) {
		return fmt.Errorf("publish: %d publishes unanswered for %v", Window, windowWait)
	}
	if p.document {
		if len(p.data) == 0 {
			p.data = wire.NewDocumentData()
		}
	} else if n := p.dataBytesFn(channel); len(p.data) != n {
		p.data = wire.NewData(n)
	}
	wire.Stamp(p.data, p.seq, time.Now())
	p.seq++
	// id = seq+1 ≠ 0: a reply (with any error) comes back for each.
	return p.conn.Send(loadclient.OpBinary, wire.Publish(uint32(p.seq), channel, p.data))
}

// Seq implements Publisher.
func (p *SocketPublisher) Seq() uint64 { return p.seq }

// Replies implements Publisher.
func (p *SocketPublisher) Replies() (ok, errs int64) { return p.ok.Load(), p.errs.Load() }

// Failure implements Publisher: the close codes the server ended the
// connection with.
func (p *SocketPublisher) Failure() error {
	if st := p.pool.Stats(); st.Closed > 0 {
		return fmt.Errorf("the server closed the publisher: %v", st.Closes)
	}
	return nil
}

// Close implements Publisher.
func (p *SocketPublisher) Close() error { return p.pool.Close() }

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
