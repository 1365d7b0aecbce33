package presence

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

const (
	maxOps       = 512  // queued calls taken per pipeline
	maxArgs      = 256  // members named in one FCALL
	refreshChunk = 2048 // members refreshed per pipeline, between queued calls
)

// call is one FCALL of the library, kept as data so a pipeline can be built
// again after the library had to be reloaded.
type call struct {
	kind    opKind
	channel string
	keys    [3]string
	args    []string
	read    *op // Members or Stats: the caller waiting for the reply
}

// run is the store's goroutine: it owns every Redis round trip, so queued
// calls reach Redis in the order they were made (an instance reads its own
// writes) and a refresh cannot overtake a Leave (see refresher.next).
func (r *Redis) run() {
	defer close(r.exited)
	if err := r.loadLibrary(context.Background()); err != nil {
		r.cfg.Log.Warn("presence: functions not loaded yet", "node", r.cfg.Node, "err", err)
	}
	ticker := time.NewTicker(r.cfg.TTL / 3)
	defer ticker.Stop()
	var (
		ops      []op
		calls    []call
		pass     refresher
		due      bool      // a refresh pass is due
		deadline time.Time // set by Close: queued calls must be sent by then
		healthy  = true
	)
	for {
		select {
		case <-ticker.C:
			due = true
		default:
		}
		if due && pass.idle() {
			pass.start(r)
			due = false
		}
		var closed bool
		ops, closed = r.take(maxOps, ops[:0])
		if closed && deadline.IsZero() {
			deadline = time.Now().Add(r.cfg.Timeout)
		}
		// Queued calls first, then the refresh chunk: a Leave taken here was
		// removed from r.live before the chunk was read, so the chunk cannot
		// re-join it after the Leave.
		calls = r.opCalls(ops, calls[:0])
		if !closed {
			calls = pass.next(r, calls)
		}
		if len(calls) == 0 {
			if closed {
				return
			}
			select {
			case <-r.kick:
			case <-ticker.C:
				due = true
			}
			continue
		}
		healthy = r.send(calls, deadline, healthy)
		clear(ops)
		clear(calls)
	}
}

// opCalls turns queued calls into FCALLs. Consecutive joins (or leaves) of
// one channel share a call: a burst of subscribers to a room is one FCALL.
func (r *Redis) opCalls(ops []op, calls []call) []call {
	for i := range ops {
		o := &ops[i]
		if o.kind == opJoin || o.kind == opLeave {
			if n := len(calls); n > 0 {
				last := &calls[n-1]
				if last.kind == o.kind && last.channel == o.channel && !full(last) {
					last.args = appendMember(last.args, o)
					continue
				}
			}
		}
		c := call{kind: o.kind, channel: o.channel, keys: r.names.Presence(o.channel)}
		switch o.kind {
		case opJoin:
			c.args = appendMember(r.joinArgs(), o)
		case opLeave:
			c.args = appendMember(nil, o)
		default:
			c.read = o
		}
		calls = append(calls, c)
	}
	return calls
}

// full reports whether c names maxArgs members already.
func full(c *call) bool {
	if c.kind == opJoin || c.kind == opRefresh {
		return len(c.args) >= 2+2*maxArgs
	}
	return len(c.args) >= maxArgs
}

func appendMember(args []string, o *op) []string {
	if o.kind == opJoin {
		return append(args, o.client, o.value)
	}
	return append(args, o.client)
}

// joinArgs starts a join's arguments: member TTL and key TTL in ms.
func (r *Redis) joinArgs() []string {
	ttl := r.cfg.TTL.Milliseconds()
	return append(make([]string, 0, 2+2*8), strconv.FormatInt(ttl, 10), strconv.FormatInt(keyTTLFactor*ttl, 10))
}

var functionName = [...]string{
	opJoin:    "wsgate_presence_join",
	opLeave:   "wsgate_presence_leave",
	opMembers: "wsgate_presence_members",
	opStats:   "wsgate_presence_stats",
	opRefresh: "wsgate_presence_refresh",
}

// send runs calls as one pipeline and answers the reads among them. It
// returns whether Redis answered, logging only changes of that state so an
// outage is one line, not one per call.
func (r *Redis) send(calls []call, deadline time.Time, healthy bool) bool {
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		for i := range calls {
			r.answer(&calls[i], rueidis.RedisResult{}, ErrClosed)
		}
		return healthy
	}
	res := r.do(calls, deadline)
	if needsLibrary(res) { // Redis restarted or was flushed
		ctx, cancel := r.context(deadline)
		err := r.loadLibrary(ctx)
		cancel()
		if err == nil {
			res = r.do(calls, deadline)
		}
	}
	ok := true
	for i := range calls {
		err := res[i].Error()
		if err != nil {
			ok = false
			r.counters.Errors.Add(1)
			err = callError(&calls[i], err)
		}
		r.answer(&calls[i], res[i], err)
		if err != nil && healthy {
			r.cfg.Log.Warn("presence: redis calls failing", "node", r.cfg.Node, "err", err)
			healthy = false
		}
	}
	if ok && !healthy {
		r.cfg.Log.Info("presence: redis calls succeed again", "node", r.cfg.Node)
		healthy = true
	}
	return healthy
}

// callError wraps a call's failure, as ErrUnavailable when it failed on
// the way to Redis rather than in it (an error reply: a plain error).
func callError(c *call, err error) error {
	if _, inRedis := rueidis.IsRedisErr(err); !inRedis {
		return fmt.Errorf("%w: %s %q: %w", ErrUnavailable, functionName[c.kind], c.channel, err)
	}
	return fmt.Errorf("presence: %s %q: %w", functionName[c.kind], c.channel, err)
}

func (r *Redis) context(deadline time.Time) (context.Context, context.CancelFunc) {
	d := time.Now().Add(r.cfg.Timeout)
	if !deadline.IsZero() && deadline.Before(d) {
		d = deadline
	}
	return context.WithDeadline(context.Background(), d)
}

func (r *Redis) do(calls []call, deadline time.Time) []rueidis.RedisResult {
	client := r.cfg.Client
	cmds := make(rueidis.Commands, len(calls))
	for i, c := range calls {
		cmds[i] = client.B().Fcall().Function(functionName[c.kind]).Numkeys(3).Key(c.keys[:]...).Arg(c.args...).Build()
	}
	ctx, cancel := r.context(deadline)
	defer cancel()
	return client.DoMulti(ctx, cmds...)
}

func needsLibrary(res []rueidis.RedisResult) bool {
	for _, r := range res {
		if err := r.Error(); err != nil && strings.Contains(err.Error(), "Function not found") {
			return true
		}
	}
	return false
}

// answer hands a read its reply (writes have nobody waiting).
func (r *Redis) answer(c *call, res rueidis.RedisResult, err error) {
	if c.read == nil {
		return
	}
	switch c.kind {
	case opMembers:
		var ms []Member
		if err == nil {
			ms, err = parseMembers(res)
			if err != nil {
				err = fmt.Errorf("presence: members of %q: %w", c.channel, err)
			}
		}
		c.read.members(ms, err)
	case opStats:
		var st Stats
		if err == nil {
			st, err = parseStats(res)
			if err != nil {
				err = fmt.Errorf("presence: stats of %q: %w", c.channel, err)
			}
		}
		c.read.stats(st, err)
	}
}

func parseMembers(res rueidis.RedisResult) ([]Member, error) {
	flat, err := res.AsStrSlice()
	if err != nil {
		return nil, err
	}
	if len(flat)%2 != 0 {
		return nil, fmt.Errorf("odd reply length %d", len(flat))
	}
	ms := make([]Member, 0, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		m, err := decode(flat[i], flat[i+1])
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func parseStats(res rueidis.RedisResult) (Stats, error) {
	n, err := res.AsIntSlice()
	if err != nil {
		return Stats{}, err
	}
	if len(n) != 2 {
		return Stats{}, fmt.Errorf("reply of %d elements, want 2", len(n))
	}
	return Stats{Clients: int(n[0]), Users: int(n[1])}, nil
}
