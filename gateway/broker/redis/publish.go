package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/gateway/broker"
)

// job is one publish, event, position or history request.
type job struct {
	channel string
	data    []byte // a publication's payload; an event's encoded envelope
	key     string // a publication's idempotency key ("": none)
	done    func(broker.PublishResult, error)

	position bool // a position read (answered through done)

	event bool // a join/leave envelope in data: plain (S)PUBLISH, nobody to answer

	history     bool // a history read (then query and doneHistory are used)
	query       broker.HistoryQuery
	doneHistory func(broker.HistoryResult, error)
}

// fail answers j with err.
func (j job) fail(err error) {
	if j.event {
		return // fire-and-forget: the caller counted the drop
	}
	if j.history {
		j.doneHistory(broker.HistoryResult{}, err)
		return
	}
	j.done(broker.PublishResult{}, err)
}

// publisher is one publishing pipeline: a goroutine that sends whatever is
// queued as one pipelined batch (DoMulti), in queue order. Channels map to
// pipelines by partition, so one channel's publications reach Redis in the
// order the gateway accepted them while different pipelines run in
// parallel. The queue is bounded: a full queue refuses (ErrOverloaded)
// instead of blocking the worker that publishes.
type publisher struct {
	b      *Broker
	mu     sync.Mutex
	cond   sync.Cond
	queue  []job
	closed bool
	batch  []job
	// leaders (run goroutine only): channel → index of the position read
	// later reads of it share, in the batch being merged.
	leaders map[string]int
}

const maxBatch = 128

func newPublisher(b *Broker, _ int) *publisher {
	p := &publisher{b: b}
	p.cond.L = &p.mu
	return p
}

// enqueue queues j, or answers it with an error when the pipeline is
// closed or full. It reports whether j was queued.
func (p *publisher) enqueue(j job) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		j.fail(errClosed)
		return false
	}
	if len(p.queue) >= p.depth(j) {
		p.mu.Unlock()
		j.fail(broker.ErrOverloaded)
		return false
	}
	p.queue = append(p.queue, j)
	p.mu.Unlock()
	p.cond.Signal()
	return true
}

// depth bounds the queue for j: publications are refused (error 107, no
// offset used) past QueueDepth; reads (a subscribe's position, a resume's
// history) get more room, since a reconnect storm subscribes thousands at
// once and each must be answered rather than refused.
func (p *publisher) depth(j job) int {
	if j.position || j.history {
		return 16 * p.b.cfg.QueueDepth
	}
	return p.b.cfg.QueueDepth
}

func (p *publisher) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *publisher) run() {
	defer p.b.wg.Done()
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.closed {
			p.cond.Wait()
		}
		if len(p.queue) == 0 {
			p.mu.Unlock()
			return
		}
		n := min(len(p.queue), maxBatch)
		p.batch = append(p.batch[:0], p.queue[:n]...)
		clear(p.queue[:n])
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = p.queue[:0:0] // let the backing array go once drained
		}
		p.mu.Unlock()
		p.send(p.mergePositions(p.batch))
		clear(p.batch)
	}
}

// mergePositions lets position reads of one channel that follow each other
// in batch, with no other job of that channel between them, share the
// first one's Redis call: a subscribe storm on one channel costs Redis one
// FCALL per batch instead of one per subscriber. The answer is as fresh
// as each read needs: every read was queued after its subscriber joined
// the hub, so before the batch was sent, and nothing of this pipeline
// touches the channel between the first read and the others. It edits
// batch in place and returns the jobs to send.
func (p *publisher) mergePositions(batch []job) []job {
	reads := 0
	for _, j := range batch {
		if j.position {
			reads++
		}
	}
	if reads < 2 { // publications alone: no map work on their path
		return batch
	}
	if p.leaders == nil {
		p.leaders = map[string]int{}
	}
	defer clear(p.leaders)
	kept := batch[:0]
	var followers map[int][]func(broker.PublishResult, error)
	for _, j := range batch {
		if !j.position {
			delete(p.leaders, j.channel)
			kept = append(kept, j)
			continue
		}
		if at, ok := p.leaders[j.channel]; ok {
			if followers == nil {
				followers = map[int][]func(broker.PublishResult, error){}
			}
			followers[at] = append(followers[at], j.done)
			continue
		}
		p.leaders[j.channel] = len(kept)
		kept = append(kept, j)
	}
	for at, dones := range followers {
		p.b.stats.PositionsShared.Add(int64(len(dones)))
		lead := kept[at].done
		kept[at].done = func(r broker.PublishResult, err error) {
			lead(r, err)
			for _, done := range dones {
				done(r, err)
			}
		}
	}
	clear(batch[len(kept):]) // drop the merged jobs' references
	return kept
}

// send runs a batch as one pipeline and answers every job.
func (p *publisher) send(batch []job) {
	b := p.b
	// A fresh slice for every call: rueidis's reader may still look at a
	// pipeline's commands after DoMulti returned on a timeout.
	cmds := make(rueidis.Commands, 0, len(batch))
	for _, j := range batch {
		cmds = append(cmds, p.command(j))
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.Timeout)
	res := b.client.DoMulti(ctx, cmds...)
	cancel()
	p.retryReads(batch, res)
	for i, j := range batch {
		if j.event {
			if res[i].Error() != nil {
				b.stats.EventsDropped.Add(1)
			}
			continue
		}
		if j.history {
			hr, err := historyResult(res[i])
			if err != nil {
				err = readError("redis history", res[i].Error(), err)
			}
			j.doneHistory(hr, err)
			continue
		}
		if j.position {
			pos, err := position(res[i])
			if err != nil {
				err = fmt.Errorf("redis position: %w", err)
			}
			j.done(pos, err)
			continue
		}
		pub, err := position(res[i])
		if err != nil {
			b.stats.PublishErrs.Add(1)
			err = publishError(err)
		}
		j.done(pub, err)
	}
}

// publishError says what a failed wsgate_publish means for the
// publication: refused by Redis (not published), never sent (Redis
// unreachable: not published), or lost on the way (outcome unknown: the
// function may have run).
func publishError(err error) error {
	if e, inRedis := rueidis.IsRedisErr(err); inRedis {
		if strings.HasPrefix(e.Error(), "KEYREUSED") {
			return broker.ErrKeyReused
		}
		return fmt.Errorf("redis publish: %w", err)
	}
	if notSent(err) {
		return broker.Unavailable(fmt.Errorf("redis publish: %w", err))
	}
	return broker.OutcomeUnknown(fmt.Errorf("redis publish: %w", err))
}

// readError wraps a failed read. One that failed on the way to Redis
// (sent: cannot connect, connection lost, timed out), not in it, was
// retried already (retryReads): Redis cannot answer now, and the caller
// may retry later (broker.ErrUnavailable). An error reply, or a reply
// that does not parse, is a plain error: retrying will not help.
func readError(what string, sent, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	if _, inRedis := rueidis.IsRedisErr(sent); sent != nil && !inRedis {
		return broker.Unavailable(err)
	}
	return err
}

// notSent reports errors that mean the command never left this process:
// the connection to Redis could not be made, or the broker is closed.
func notSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, errClosed) || errors.As(err, &op) && op.Op == "dial"
}

// retryReads runs jobs again, once, that certainly did not execute: any
// job Redis refused because the functions library is missing (a restarted
// or flushed Redis: the library is loaded first), and reads that failed on
// the connection rather than in Redis (a pooled connection found dead after
// a restart; reads are idempotent). A publication that failed on the
// connection is not retried: it may have executed before the connection
// broke.
func (p *publisher) retryReads(batch []job, res []rueidis.RedisResult) {
	var idx []int
	for i, j := range batch {
		if safeToRetry(j, res[i].Error()) {
			idx = append(idx, i)
		}
	}
	// Missing functions, or a dead connection (maybe a restarted Redis):
	// (re)load the library first; it is idempotent. Dead pooled
	// connections are replaced lazily, so try a few times. Commands are
	// built anew for every attempt: rueidis recycles a command once sent.
	for attempt := 0; attempt < 3 && len(idx) > 0; attempt++ {
		if attempt > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		_ = p.b.loadLibrary() // if it failed, the retry fails the same way
		cmds := make(rueidis.Commands, 0, len(idx))
		for _, i := range idx {
			cmds = append(cmds, p.command(batch[i]))
		}
		ctx, cancel := context.WithTimeout(p.b.ctx, p.b.cfg.Timeout)
		out := p.b.client.DoMulti(ctx, cmds...)
		cancel()
		var again []int
		for k, r := range out {
			res[idx[k]] = r
			if safeToRetry(batch[idx[k]], r.Error()) {
				again = append(again, idx[k])
			}
		}
		idx = again
	}
}

func (p *publisher) command(j job) rueidis.Completed {
	b := p.b
	c := b.client.B()
	meta, hist := b.names.metaKey(j.channel), b.names.historyKey(j.channel)
	ttl := strconv.FormatInt(b.cfg.MetaTTL.Milliseconds(), 10)
	size, histTTL := b.cfg.History(j.channel)
	histTTLms := strconv.FormatInt(max(histTTL.Milliseconds(), 1), 10)
	switch {
	case j.position:
		return c.Fcall().Function("wsgate_position").Numkeys(2).Key(meta, hist).Arg(ttl).Build()
	case j.history:
		reverse := "0"
		if j.query.Reverse {
			reverse = "1"
		}
		return c.Fcall().Function("wsgate_history").Numkeys(2).Key(meta, hist).
			Arg(strconv.FormatUint(j.query.Since, 10), strconv.Itoa(j.query.Limit), reverse, histTTLms, ttl).Build()
	}
	if j.event {
		// An event takes no offset and enters no history: no function,
		// just the envelope on the channel's Pub/Sub channel.
		if b.cluster {
			return c.Spublish().Channel(b.names.pubsubChannel(j.channel)).Message(rueidis.BinaryString(j.data)).Build()
		}
		return c.Publish().Channel(b.names.pubsubChannel(j.channel)).Message(rueidis.BinaryString(j.data)).Build()
	}
	cmd := "PUBLISH"
	if b.cluster {
		cmd = "SPUBLISH"
	}
	keys := []string{meta, hist}
	args := []string{b.names.pubsubChannel(j.channel), j.channel, rueidis.BinaryString(j.data), b.cfg.Node,
		strconv.FormatInt(time.Now().UnixMilli(), 10), ttl, cmd, strconv.Itoa(size), histTTLms}
	if j.key != "" {
		keys = append(keys, b.names.idempotencyKey(j.channel, j.key))
		args = append(args, strconv.FormatInt(b.cfg.IdempotencyTTL.Milliseconds(), 10))
	}
	return c.Fcall().Function("wsgate_publish").Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// position reads a function's {offset, epoch[, replayed]} reply.
func position(r rueidis.RedisResult) (broker.PublishResult, error) {
	arr, err := r.ToArray()
	if err != nil {
		return broker.PublishResult{}, err
	}
	if len(arr) != 2 && len(arr) != 3 {
		return broker.PublishResult{}, fmt.Errorf("unexpected reply of %d elements", len(arr))
	}
	off, err := arr[0].AsInt64()
	if err != nil {
		return broker.PublishResult{}, err
	}
	epoch, err := arr[1].ToString()
	if err != nil {
		return broker.PublishResult{}, err
	}
	return broker.PublishResult{Position: broker.Position{Offset: uint64(off), Epoch: epoch}, Replayed: len(arr) == 3}, nil
}

// historyResult reads wsgate_history's {offset, epoch, off1, data1, ...}.
func historyResult(r rueidis.RedisResult) (broker.HistoryResult, error) {
	arr, err := r.ToArray()
	if err != nil {
		return broker.HistoryResult{}, err
	}
	if len(arr) < 2 || len(arr)%2 != 0 {
		return broker.HistoryResult{}, fmt.Errorf("unexpected reply of %d elements", len(arr))
	}
	var res broker.HistoryResult
	off, err := arr[0].AsInt64()
	if err != nil {
		return res, err
	}
	epoch, err := arr[1].ToString()
	if err != nil {
		return res, err
	}
	res.Position = broker.Position{Offset: uint64(off), Epoch: epoch}
	for i := 2; i < len(arr); i += 2 {
		o, err := arr[i].AsInt64()
		if err != nil {
			return res, err
		}
		d, err := arr[i+1].ToString()
		if err != nil {
			return res, err
		}
		res.Publications = append(res.Publications, broker.HistoryEntry{Offset: uint64(o), Data: []byte(d)})
	}
	return res, nil
}

func functionMissing(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && strings.Contains(e.Error(), "Function not found")
}

// safeToRetry: the job certainly did not run (no library yet), or it is a
// read that failed on the connection.
func safeToRetry(j job, err error) bool {
	if err == nil {
		return false
	}
	_, inRedis := rueidis.IsRedisErr(err)
	return functionMissing(err) || (!inRedis && (j.position || j.history))
}
