package resume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/wait"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// publisher publishes on every channel through one connection and keeps
// each channel's highest acknowledged offset.
type publisher struct {
	pool     *loadclient.Pool
	conn     *loadclient.Conn
	channels []string
	data     []byte

	mu     sync.Mutex
	chanOf []int // by id-1
	top    []uint64

	sent, acked, refused atomic.Int64
	stopCh, done         chan struct{}
	stopOnce             sync.Once
}

// publishWindow bounds unanswered publishes.
const publishWindow = 256

func dialPublisher(ctx context.Context, addr string, channels []string) (*publisher, error) {
	p := &publisher{channels: channels, data: wire.NewData(32), top: make([]uint64, len(channels))}
	pool, err := loadclient.Dial(ctx, loadclient.Config{Addr: addr, Path: drive.Path, Conns: 1, OnMessage: p.onMessage})
	if err != nil {
		return nil, err
	}
	conns := pool.Conns()
	if len(conns) != 1 {
		_ = pool.Close()
		return nil, fmt.Errorf("did not connect: %s", pool.Stats().FirstError)
	}
	p.pool, p.conn = pool, conns[0]
	return p, nil
}

func (p *publisher) onMessage(_ *loadclient.Conn, _ byte, payload []byte) {
	f, err := wire.ParsePush(payload)
	if err != nil || !f.IsReply() {
		return
	}
	if f.HasError {
		p.refused.Add(1)
		return
	}
	p.mu.Lock()
	if f.ID >= 1 && int(f.ID) <= len(p.chanOf) {
		ch := p.chanOf[f.ID-1]
		p.top[ch] = max(p.top[ch], f.Offset)
	}
	p.mu.Unlock()
	p.acked.Add(1)
}

// publish publishes one message on channel i, waiting while the window is
// full.
func (p *publisher) publish(i int) error {
	if !wait.For(context.Background(), 10*time.Second, func() bool {
		return p.sent.Load()-p.acked.Load()-p.refused.Load() < publishWindow
	}) {
		return errors.New("publish window stuck")
	}
	p.mu.Lock()
	p.chanOf = append(p.chanOf, i)
	id := len(p.chanOf)
	p.mu.Unlock()
	wire.Stamp(p.data, uint64(id), time.Now())
	p.sent.Add(1)
	return p.conn.Send(loadclient.OpBinary, wire.Publish(uint32(id), p.channels[i], p.data))
}

// start publishes one message on every channel, rate times a second,
// until stop.
func (p *publisher) start(rate float64) {
	p.stopCh, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		interval := time.Duration(float64(time.Second) / rate)
		next := time.Now()
		for {
			for i := range p.channels {
				if p.publish(i) != nil {
					return
				}
			}
			next = next.Add(interval)
			select {
			case <-p.stopCh:
				return
			case <-time.After(time.Until(next)):
			}
		}
	}()
}

func (p *publisher) stop() {
	if p.stopCh == nil {
		return
	}
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
}

// waitIdle waits until every publish is answered.
func (p *publisher) waitIdle(timeout time.Duration) bool {
	return wait.For(context.Background(), timeout, func() bool {
		return p.sent.Load() == p.acked.Load()+p.refused.Load()
	})
}

// resetCounts forgets the calibration's publications (not their offsets).
func (p *publisher) resetCounts() {
	p.sent.Store(0)
	p.acked.Store(0)
	p.refused.Store(0)
	p.mu.Lock()
	p.chanOf = p.chanOf[:0]
	p.mu.Unlock()
}

// tops returns each channel's highest acknowledged offset.
func (p *publisher) tops() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]uint64, len(p.channels))
	for i, ch := range p.channels {
		out[ch] = p.top[i]
	}
	return out
}

func (p *publisher) close() {
	p.stop()
	_ = p.pool.Close()
}
