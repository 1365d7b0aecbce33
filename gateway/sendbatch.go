package gateway

import (
	"log/slog"

	"github.com/wsgate/wsgate/gateway/hub"
	"github.com/wsgate/wsgate/netpoll"
)

// Fan-out flushes go to the kernel in batches. The hub hands a write
// worker's touched subscribers over together (hub.Config.FlushAll), and
// the first write to each of their sockets goes out in one io_uring_enter
// (netpoll.Sender) instead of one write(2) each: on the host measured a
// send cost 40 % less that way (bench/README.md, "Batched sends"), and a
// publication to 10,000 subscribers is 10,000 writes.
//
// A connection's lock is held from its place in the batch until its
// result is applied, as a lone flush holds it. Locks are only tried: a
// connection busy elsewhere (its worker answering a command) is flushed
// alone after the batches, so two batches can never wait on each other.

// sendBatchSize is how many sockets one io_uring_enter writes to: the
// hub's flush step (hub/worker.go), and few enough that a connection
// waits for its lock at most one batch long (64 sends, and the rare
// follow-up writes of a queue longer than netpoll.MaxIovecs frames).
const sendBatchSize = 64

// sendBatch is a Sender with the scratch lists of one batch.
type sendBatch struct {
	snd   *netpoll.Sender
	conns []*conn          // conns[i]'s queue is the Sender's item i
	alone []hub.Subscriber // flushed one at a time after the batches
}

// sendBatches is a fixed set of batches, one per CPU the workers can use
// at once: taking one never waits (none free: flush one at a time), and
// each holds one io_uring fd for the server's life.
type sendBatches struct {
	free    chan *sendBatch
	all     []*sendBatch
	metrics *Metrics // SendBatches
}

// newSendBatches makes n batches, or fewer (none) where this kernel has no
// usable io_uring: that is logged once, and flushes write one socket at a
// time as they did before batching.
func newSendBatches(n int, log *slog.Logger, m *Metrics) *sendBatches {
	p := &sendBatches{free: make(chan *sendBatch, n), metrics: m}
	for i := range n {
		snd, err := netpoll.NewSender(sendBatchSize)
		if err != nil {
			log.Warn("fewer io_uring batches than wanted; without any, one write(2) per socket", "batches", i, "wanted", n, "err", err)
			break
		}
		b := &sendBatch{snd: snd, conns: make([]*conn, 0, snd.Cap())}
		p.all = append(p.all, b)
		p.free <- b
	}
	return p
}

// enabled reports whether batches are available at all.
func (p *sendBatches) enabled() bool { return len(p.all) > 0 }

func (p *sendBatches) get() *sendBatch {
	select {
	case b := <-p.free:
		return b
	default:
		return nil
	}
}

func (p *sendBatches) put(b *sendBatch) { p.free <- b }

// close releases every batch's ring, once. Call it once nothing flushes
// any more (after the hub's workers stopped).
func (p *sendBatches) close() {
	for range len(p.free) {
		<-p.free
	}
	for _, b := range p.all {
		_ = b.snd.Close()
	}
	p.all = nil
}

// flushAll is the hub's FlushAll: subs in batches when one is free, one
// at a time otherwise. Connections whose lock was taken are flushed last,
// so a busy one delays no batch.
func (p *sendBatches) flushAll(subs []hub.Subscriber) {
	b := p.get()
	if b == nil {
		for _, sub := range subs {
			sub.Flush()
		}
		return
	}
	defer p.put(b)
	for len(subs) > 0 {
		subs = b.send(subs, p.metrics)
	}
	for k, sub := range b.alone {
		sub.Flush()
		b.alone[k] = nil
	}
	b.alone = b.alone[:0]
}

// send writes to as many of subs as the batch holds and returns the rest.
func (b *sendBatch) send(subs []hub.Subscriber, m *Metrics) []hub.Subscriber {
	i := 0
	for ; i < len(subs) && b.snd.Len() < b.snd.Cap(); i++ {
		b.add(subs[i])
	}
	if b.snd.Len() > 0 {
		b.snd.Send()
		m.SendBatches.Add(1)
	}
	for k, c := range b.conns {
		writes, err := b.snd.Result(k)
		c.flushedLocked(writes, err, false)
		c.mu.Unlock()
		b.conns[k] = nil
	}
	b.conns = b.conns[:0]
	b.snd.Reset()
	return subs[i:]
}

// add puts sub's socket in the batch, locked, when there is something to
// write; a subscriber whose lock is taken goes to the alone list.
func (b *sendBatch) add(sub hub.Subscriber) {
	c := connOf(sub)
	if c == nil || !c.mu.TryLock() {
		b.alone = append(b.alone, sub)
		return
	}
	switch {
	case c.state == stateClosed || c.out == nil:
		c.mu.Unlock()
	case c.out.Empty():
		c.flushedLocked(0, nil, false)
		c.mu.Unlock()
	default:
		b.snd.Add(c.desc.Fd(), c.out)
		b.conns = append(b.conns, c)
	}
}

// connOf is the connection under a subscriber, or nil for one that is not
// a session on a conn.
func connOf(sub hub.Subscriber) *conn {
	sess, ok := sub.(*session)
	if !ok {
		return nil
	}
	c, _ := sess.t.(*conn)
	return c
}
