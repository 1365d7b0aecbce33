package resume

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/wait"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
)

// client is one client's view across both connections.
type client struct {
	mu      sync.Mutex
	channel string
	epoch   string
	last    uint64 // offset of the last message received in order
	gaps    [2]int // by phase
	dups    [2]int
	// After reconnecting.
	replied   bool
	recovered bool
	reason    string
	top       uint64 // the channel's top offset in the resume reply
	missed    uint64
	early     int // messages before the resume reply
	anomalies []string
	replyAt   time.Time
	doneAt    time.Time
	failed    bool // error reply, recovered:false, or closed
}

// clients is every client, the two pools' callbacks and counters.
type clients struct {
	c        []client
	phase    atomic.Int32 // 1, then 2 once the first pool is closed
	replied  atomic.Int64 // phase 1 subscribe replies (errors included)
	failed   atomic.Int64 // phase 1 subscribe errors
	finished atomic.Int64 // phase 2 clients recovered or failed
	bad      atomic.Int64 // undecodable frames
}

func newClients(n int, channels []string) *clients {
	cl := &clients{c: make([]client, n)}
	for i := range cl.c {
		cl.c[i].channel = channels[i%len(channels)]
	}
	cl.phase.Store(1)
	return cl
}

// dial opens one connection per client; connection i is client i.
func (cl *clients) dial(ctx context.Context, addr string, dialsInFlight int) (*loadclient.Pool, error) {
	return loadclient.Dial(ctx, loadclient.Config{Addr: addr, Path: drive.Path, Conns: len(cl.c),
		DialsInFlight: dialsInFlight, HandshakeTimeout: 15 * time.Second,
		OnMessage: cl.onMessage, OnClose: cl.onClose})
}

func (cl *clients) onMessage(conn *loadclient.Conn, _ byte, payload []byte) {
	now := time.Now()
	f, err := wire.ParsePush(payload)
	if err != nil {
		cl.bad.Add(1)
		return
	}
	phase := int(cl.phase.Load())
	c := &cl.c[conn.Index()]
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case f.IsReply():
		if phase == 1 {
			cl.replied.Add(1)
			if f.HasError {
				cl.failed.Add(1)
				c.reason = errText(&f)
				return
			}
			c.epoch, c.last = string(f.Epoch), f.Offset
			return
		}
		cl.onResumeReply(c, &f, now)
	case f.IsMessage():
		if string(f.Channel) != c.channel {
			cl.bad.Add(1)
			return
		}
		if phase == 2 && !c.replied {
			c.early++
		}
		switch off := f.Offset; {
		case off == c.last+1:
			c.last = off
		case off <= c.last:
			c.dups[phase-1]++
			c.note(phase, "duplicate", off, now)
		default:
			c.gaps[phase-1]++
			c.note(phase, "gap", off, now)
			c.last = off
		}
		if phase == 2 && c.replied && c.recovered && c.doneAt.IsZero() && !c.failed &&
			c.last >= c.top && c.gaps[1] == 0 && c.dups[1] == 0 {
			c.doneAt = now
			cl.finished.Add(1)
		}
	}
}

// maxAnomalies bounds the gaps and duplicates described per client.
const maxAnomalies = 3

// note describes a gap or duplicate (c.mu held).
func (c *client) note(phase int, what string, off uint64, now time.Time) {
	if len(c.anomalies) >= maxAnomalies {
		return
	}
	state := "before the restart"
	switch {
	case phase == 1:
	case !c.replied:
		state = "before the resume reply"
	case c.doneAt.IsZero():
		state = fmt.Sprintf("during replay (reply top %d)", c.top)
	default:
		state = fmt.Sprintf("%v after recovery (reply top %d)", now.Sub(c.doneAt).Round(time.Millisecond), c.top)
	}
	c.anomalies = append(c.anomalies, fmt.Sprintf("%s: %s: offset %d after %d, %s", c.channel, what, off, c.last, state))
}

// onResumeReply handles the answer to the subscribe with a position.
func (cl *clients) onResumeReply(c *client, f *wire.Push, now time.Time) {
	if c.replied || c.failed {
		return
	}
	if f.HasError {
		c.failed, c.reason = true, errText(f)
		cl.finished.Add(1)
		return
	}
	c.replied, c.replyAt = true, now
	c.recovered = f.HasRecovered && f.Recovered
	c.top = f.Offset
	if c.top > c.last {
		c.missed = c.top - c.last
	}
	switch {
	case !f.HasRecovered:
		c.failed, c.reason = true, "reply without recovered"
	case !c.recovered:
		c.failed, c.reason = true, "recovered:false: "+string(f.Reason)
	case string(f.Epoch) != c.epoch:
		c.failed, c.reason = true, "recovered:true but the epoch changed"
	}
	if c.failed {
		cl.finished.Add(1)
		return
	}
	if c.last >= c.top && c.gaps[1] == 0 && c.dups[1] == 0 {
		c.doneAt = now
		cl.finished.Add(1)
	}
}

func (cl *clients) onClose(conn *loadclient.Conn, code int) {
	if cl.phase.Load() != 2 {
		return
	}
	c := &cl.c[conn.Index()]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.doneAt.IsZero() && !c.failed {
		c.failed, c.reason = true, fmt.Sprintf("closed by the server (%d)", code)
		cl.finished.Add(1)
	}
}

// subscribe sends the plain subscribes of phase 1 and waits for the
// replies.
func (cl *clients) subscribe(ctx context.Context, conns []*loadclient.Conn, timeout time.Duration) error {
	for _, conn := range conns {
		if err := conn.Send(loadclient.OpBinary, wire.Subscribe(1, cl.c[conn.Index()].channel)); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	if !wait.For(ctx, timeout, func() bool { return cl.replied.Load() >= int64(len(conns)) }) {
		return fmt.Errorf("%d of %d subscribes answered after %v", cl.replied.Load(), len(conns), timeout)
	}
	if n := cl.failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d subscribes failed (first: %s)", n, len(conns), cl.firstReason())
	}
	return nil
}

func (cl *clients) firstReason() string {
	for i := range cl.c {
		c := &cl.c[i]
		c.mu.Lock()
		r := c.reason
		c.mu.Unlock()
		if r != "" {
			return r
		}
	}
	return ""
}

// resubscribe sends every reconnected client's subscribe with its resume
// position.
func (cl *clients) resubscribe(conns []*loadclient.Conn) error {
	var errs int
	for _, conn := range conns {
		c := &cl.c[conn.Index()]
		c.mu.Lock()
		cmd := codec.Command{ID: 2, Cmd: codec.CmdSubscribe, Channel: []byte(c.channel),
			Offset: c.last, HasOffset: true, Epoch: []byte(c.epoch), HasEpoch: true}
		c.mu.Unlock()
		frame, err := codec.AppendCommand(nil, codec.Msgpack, &cmd)
		if err == nil {
			err = conn.Send(loadclient.OpBinary, frame)
		}
		if err != nil {
			errs++
			c.mu.Lock()
			if !c.failed {
				c.failed, c.reason = true, "send: "+err.Error()
				cl.finished.Add(1)
			}
			c.mu.Unlock()
		}
	}
	if errs > 0 {
		return fmt.Errorf("%d resume subscribes could not be sent", errs)
	}
	return nil
}

// atTop counts the recovered clients whose last offset is their channel's
// last publication.
func (cl *clients) atTop(tops map[string]uint64) int {
	n := 0
	for i := range cl.c {
		c := &cl.c[i]
		c.mu.Lock()
		if !c.doneAt.IsZero() && c.last >= tops[c.channel] {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// errText describes an error reply.
func errText(f *wire.Push) string {
	return fmt.Sprintf("error %d: %s", f.ErrorCode, f.ErrorMessage)
}
