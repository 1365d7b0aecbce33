package abuse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// FloodStats is what the flooding client saw.
type FloodStats struct {
	Connections int `json:"connections"`
	// Publishes sent, accepted (a reply without error) and refused with 107.
	Sent        int64       `json:"sent"`
	Accepted    int64       `json:"accepted"`
	RateLimited int64       `json:"rate_limited"`
	OtherErrors int64       `json:"other_errors"`
	Closes      map[int]int `json:"closes"`
	// Connection's first publish → its close, per connection.
	ClosedAfterMs results.Percentiles `json:"closed_after_ms"`
	FirstClosedMs float64             `json:"first_closed_after_ms"`
	// Publishes sent on a connection before it was closed (median).
	SentPerConn float64 `json:"sent_per_connection"`
	FirstError  string  `json:"first_error,omitempty"`
}

// flood is one client flooding publishes as fast as it can (whole
// batches of frames written back to back: the abuser spends nothing per
// frame), with reconnect as soon as it is closed, until stopped.
type flood struct {
	addr, channel string
	reconnect     bool
	stopFlag      atomic.Bool
	done          chan *FloodStats
}

func startFlood(addr, channel string, reconnect bool) *flood {
	f := &flood{addr: addr, channel: channel, reconnect: reconnect, done: make(chan *FloodStats, 1)}
	go func() { f.done <- f.run() }()
	return f
}

func (f *flood) stop() *FloodStats {
	f.stopFlag.Store(true)
	return <-f.done
}

func (f *flood) run() *FloodStats {
	st := &FloodStats{Closes: map[int]int{}}
	frame := loadclient.ClientFrame(wsframe.OpBinary, wire.Publish(1, f.channel, wire.NewData(32)))
	batch := bytes.Repeat(frame, 256)
	var after []time.Duration
	var perConn []float64
	for !f.stopFlag.Load() {
		conn, in, status, err := wsDial(f.addr, floodIP)
		if err != nil || status != "101" {
			if st.FirstError == "" {
				st.FirstError = fmt.Sprintf("status %q: %v", status, err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		st.Connections++
		r := f.flood(conn, in, batch, len(frame))
		st.Sent += r.sent
		st.Accepted += r.ok
		st.RateLimited += r.limited
		st.OtherErrors += r.other
		st.Closes[r.code]++
		if r.closedAfter > 0 {
			after = append(after, r.closedAfter)
			perConn = append(perConn, float64(r.sent))
			if st.FirstClosedMs == 0 {
				st.FirstClosedMs = results.Millis(r.closedAfter)
			}
		}
		if !f.reconnect {
			for !f.stopFlag.Load() {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	if len(after) > 0 {
		q := loadclient.Percentiles(after, 50, 90, 99, 100)
		st.ClosedAfterMs = results.Percentiles{P50: results.Millis(q[0]), P90: results.Millis(q[1]), P99: results.Millis(q[2]), Max: results.Millis(q[3])}
		slices.Sort(perConn)
		st.SentPerConn = perConn[len(perConn)/2]
	}
	return st
}

// floodConn is what one flooding connection saw.
type floodConn struct {
	sent               int64 // frames written (whole ones)
	ok, limited, other int64 // replies
	code               int   // close code (1006: none)
	closedAfter        time.Duration
}

// flood writes batch (frames of frameLen bytes) to conn back to back
// until the gateway closes it (or stop), reading replies and the close
// frame (from in: conn, after what came with the upgrade) on the side.
func (f *flood) flood(conn net.Conn, in io.Reader, batch []byte, frameLen int) floodConn {
	var r floodConn
	r.code = 1006
	readDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(readDone)
		_ = loadclient.ReadFrames(in, maxReply, loadclient.FrameHandlers{
			Message: func(_ byte, payload []byte) { r.reply(payload) },
			Close: func(code int) {
				r.code, r.closedAfter = code, time.Since(start)
			},
		})
	}()
	var written int64
	off := 0 // into batch: a write cut short by the deadline goes on mid-frame
write:
	for !f.stopFlag.Load() {
		// A deadline, so that stop is seen while the socket is full.
		_ = conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := conn.Write(batch[off:])
		written += int64(n)
		off = (off + n) % len(batch)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			break
		}
		select {
		case <-readDone:
			break write
		default:
		}
	}
	r.sent = written / int64(frameLen)
	select {
	case <-readDone:
	case <-time.After(time.Second):
	}
	_ = conn.Close()
	<-readDone
	return r
}

// maxReply bounds a server message the flooder reads.
const maxReply = 16 << 20

// reply counts one server message: a publish accepted, refused with 107,
// or refused otherwise.
func (r *floodConn) reply(payload []byte) {
	p, err := wire.ParsePush(payload)
	switch {
	case err != nil || !p.IsReply():
	case !p.HasError:
		r.ok++
	case p.ErrorCode == uint64(codec.CodeRateLimited):
		r.limited++
	default:
		r.other++
	}
}

// mergeInto adds one round's flood stats to the total so far (nil: none).
func (f *FloodStats) mergeInto(total *FloodStats) *FloodStats {
	switch {
	case f == nil:
		return total
	case total == nil:
		return f
	}
	total.Connections += f.Connections
	total.Sent += f.Sent
	total.Accepted += f.Accepted
	total.RateLimited += f.RateLimited
	total.OtherErrors += f.OtherErrors
	if total.Closes == nil {
		total.Closes = map[int]int{}
	}
	for code, n := range f.Closes {
		total.Closes[code] += n
	}
	// Per-connection figures: the worse of the rounds.
	total.ClosedAfterMs.P50 = max(total.ClosedAfterMs.P50, f.ClosedAfterMs.P50)
	total.ClosedAfterMs.P90 = max(total.ClosedAfterMs.P90, f.ClosedAfterMs.P90)
	total.ClosedAfterMs.P99 = max(total.ClosedAfterMs.P99, f.ClosedAfterMs.P99)
	total.ClosedAfterMs.P999 = max(total.ClosedAfterMs.P999, f.ClosedAfterMs.P999)
	total.ClosedAfterMs.Max = max(total.ClosedAfterMs.Max, f.ClosedAfterMs.Max)
	total.FirstClosedMs = max(total.FirstClosedMs, f.FirstClosedMs)
	total.SentPerConn = max(total.SentPerConn, f.SentPerConn)
	if total.FirstError == "" {
		total.FirstError = f.FirstError
	}
	return total
}
