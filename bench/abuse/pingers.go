package abuse

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/wait"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
)

// pingers are the well-behaved clients: each sends a protocol ping now and
// then and times the reply.
type pingers struct {
	pool  *loadclient.Pool
	conns []*loadclient.Conn
	// sentAt holds each connection's unanswered pings' send times (Unix
	// ns) by id mod pingSlots.
	sentAt [][pingSlots]atomic.Int64
	cur    atomic.Pointer[pingPhase]
	// lost counts pings never answered: overwritten in their slot (64
	// newer pings were sent first), or still unanswered after stop.
	lost atomic.Int64

	stopCh, done chan struct{}
	stopOnce     sync.Once
}

// pingSlots bounds a connection's unanswered pings that can be timed.
const pingSlots = 64

type pingPhase struct {
	h                    hist.Hist
	sent, answered, errs atomic.Int64
}

func dialPingers(ctx context.Context, addr string, n int) (*pingers, error) {
	pg := &pingers{sentAt: make([][pingSlots]atomic.Int64, n)}
	pg.cur.Store(&pingPhase{})
	pool, err := loadclient.Dial(ctx, loadclient.Config{Addr: addr, Path: drive.Path, Conns: n, DialsInFlight: 100,
		SourceIPs: []string{politeIP}, OnMessage: pg.onMessage})
	if err != nil {
		return nil, err
	}
	pg.pool, pg.conns = pool, pool.Conns()
	if len(pg.conns) != n {
		_ = pool.Close()
		return nil, fmt.Errorf("%d of %d well-behaved clients connected: %s", len(pg.conns), n, pool.Stats().FirstError)
	}
	return pg, nil
}

func (pg *pingers) onMessage(c *loadclient.Conn, _ byte, payload []byte) {
	now := time.Now()
	r, err := wire.ParsePush(payload)
	if err != nil || !r.IsReply() {
		return
	}
	ph := pg.cur.Load()
	if r.HasError {
		ph.errs.Add(1)
	}
	sent := pg.sentAt[c.Index()][r.ID%pingSlots].Swap(0)
	if sent == 0 {
		return
	}
	ph.h.Record(now.Sub(time.Unix(0, sent)))
	ph.answered.Add(1)
}

// start sends rate pings per second per connection, spread evenly over
// the connections, until stop.
func (pg *pingers) start(rate float64) {
	pg.stopCh, pg.done = make(chan struct{}), make(chan struct{})
	interval := time.Duration(float64(time.Second) / (rate * float64(len(pg.conns))))
	go func() {
		defer close(pg.done)
		ids := make([]uint32, len(pg.conns))
		begin := time.Now()
		for k := 0; ; {
			due := int(time.Since(begin) / interval)
			for ; k <= due; k++ {
				i := k % len(pg.conns)
				ids[i]++
				if ids[i] == 0 {
					ids[i] = 1
				}
				frame, _ := codec.AppendCommand(nil, codec.Msgpack, &codec.Command{ID: ids[i], Cmd: codec.CmdPing})
				if pg.sentAt[i][ids[i]%pingSlots].Swap(time.Now().UnixNano()) != 0 {
					pg.lost.Add(1)
				}
				if pg.conns[i].Send(loadclient.OpBinary, frame) == nil {
					pg.cur.Load().sent.Add(1)
				}
			}
			select {
			case <-pg.stopCh:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
}

// measureInto records the round trips of the next d into ph (which may
// already hold earlier windows').
func (pg *pingers) measureInto(ctx context.Context, ph *pingPhase, d time.Duration) {
	pg.cur.Store(ph)
	wait.Sleep(ctx, d)
	pg.cur.Store(&pingPhase{})
}

// result summarizes a phase's round trips.
func (ph *pingPhase) result() PingResult {
	q := ph.h.Percentiles(50, 90, 99, 99.9)
	return PingResult{Sent: ph.sent.Load(), Answered: ph.answered.Load(), Errors: ph.errs.Load(),
		LatencyMs: results.Percentiles{P50: results.Millis(q[0]), P90: results.Millis(q[1]), P99: results.Millis(q[2]), P999: results.Millis(q[3]), Max: results.Millis(ph.h.Max())}}
}

// stop stops pinging, waits up to grace for the pings in flight and
// returns the pings never answered.
func (pg *pingers) stop(grace time.Duration) int64 {
	if pg.stopCh == nil {
		return 0
	}
	pg.stopOnce.Do(func() { close(pg.stopCh) })
	<-pg.done
	unanswered := func() int64 {
		var n int64
		for i := range pg.sentAt {
			for j := range pg.sentAt[i] {
				if pg.sentAt[i][j].Load() != 0 {
					n++
				}
			}
		}
		return n
	}
	wait.For(context.Background(), grace, func() bool { return unanswered() == 0 })
	return pg.lost.Load() + unanswered()
}

func (pg *pingers) close() {
	pg.stop(0)
	_ = pg.pool.Close()
}
