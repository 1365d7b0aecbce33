package abuse

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// The stall abuse: clients that hold a connection while costing the
// gateway as little effort of their own as possible, a third of each kind:
//
//   - half handshakes: an upgrade request that never ends (the gateway
//     closes them at --handshake-timeout);
//   - half frames: upgraded, then a frame header declaring 100 bytes and 10
//     of them (closed at --message-timeout with 4009);
//   - tricklers: upgraded, then one byte of a frame every second (closed
//     at --message-timeout too).
//
// None of them may cost a worker: the well-behaved clients' round trips
// must not notice them.

// Stall kinds.
const (
	stallHandshake = "half_handshake"
	stallFrame     = "half_frame"
	stallTrickle   = "trickler"
)

// stallSource is the stalled clients' source address.
const stallSource = "127.0.3.1"

// StallStats is what the stalled clients saw.
type StallStats struct {
	// Opened by kind; ClosedByServer: those the gateway had closed (EOF or
	// a close frame) by the end of the window, by kind.
	Opened         map[string]int `json:"opened"`
	ClosedByServer map[string]int `json:"closed_by_server"`
	FirstError     string         `json:"first_error,omitempty"`
	OpenMs         float64        `json:"open_ms"` // time to open them all
}

type stall struct {
	addr   string
	conns  int
	stopCh chan struct{}
	done   chan *StallStats
	once   sync.Once
}

// startStall opens the stalled clients (it returns once they are all
// open, so a measurement that starts then sees only their stalling) and
// trickles until stopped.
func startStall(addr string, conns int) *stall {
	s := &stall{addr: addr, conns: conns, stopCh: make(chan struct{}), done: make(chan *StallStats, 1)}
	st, held := s.open()
	go func() { s.done <- s.hold(st, held) }()
	return s
}

func (s *stall) stop() *StallStats {
	s.once.Do(func() { close(s.stopCh) })
	return <-s.done
}

type stalled struct {
	kind string
	c    net.Conn
}

// open opens the stalled clients, a third of each kind, 64 at a time.
func (s *stall) open() (*StallStats, []stalled) {
	st := &StallStats{Opened: map[string]int{}, ClosedByServer: map[string]int{}}
	start := time.Now()
	kinds := []string{stallHandshake, stallFrame, stallTrickle}
	held := make([]stalled, s.conns)
	errs := make([]error, s.conns)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range held {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			kind := kinds[i%len(kinds)]
			held[i].kind = kind
			held[i].c, errs[i] = openStalled(s.addr, kind)
		})
	}
	wg.Wait()
	open := held[:0]
	for i, h := range held {
		if errs[i] != nil {
			if st.FirstError == "" {
				st.FirstError = fmt.Sprintf("%s: %v", h.kind, errs[i])
			}
			continue
		}
		st.Opened[h.kind]++
		open = append(open, h)
	}
	st.OpenMs = results.Millis(time.Since(start))
	return st, open
}

// hold trickles a byte a second to the tricklers until stopped, then
// counts what the server closed and closes the rest.
func (s *stall) hold(st *StallStats, held []stalled) *StallStats {
	trickle := loadclient.ClientFrame(wsframe.OpText, []byte("hello"))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for k := 0; !s.stopped(); k++ {
		for _, h := range held {
			if h.kind == stallTrickle {
				_ = h.c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = h.c.Write(trickle[k%len(trickle) : k%len(trickle)+1])
			}
		}
		select {
		case <-s.stopCh:
		case <-tick.C:
		}
	}
	for _, h := range held {
		if closedByPeer(h.c) {
			st.ClosedByServer[h.kind]++
		}
		_ = h.c.Close()
	}
	return st
}

func (s *stall) stopped() bool {
	select {
	case <-s.stopCh:
		return true
	default:
		return false
	}
}

// openStalled opens one stalled client of the given kind.
func openStalled(addr, kind string) (net.Conn, error) {
	if kind == stallHandshake {
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(stallSource)}}
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\n"); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	}
	c, _, status, err := wsDial(addr, stallSource)
	if err != nil || status != "101" {
		return nil, fmt.Errorf("upgrade: status %q: %w", status, errors.Join(err, errors.New("not upgraded")))
	}
	if kind == stallFrame {
		// A masked binary frame declaring 100 bytes, with 10 sent.
		if _, err := io.WriteString(c, "\x82\xE4\x01\x02\x03\x04"+"0123456789"); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// closedByPeer reports whether the server has closed c (EOF, or anything
// to read: a stalled client is only ever sent a close frame or an error).
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	n, err := c.Read(b[:])
	return n > 0 || errors.Is(err, io.EOF)
}

// mergeInto adds one window's stall stats to the total so far (nil: none).
func (s *StallStats) mergeInto(total *StallStats) *StallStats {
	switch {
	case s == nil:
		return total
	case total == nil:
		return s
	}
	for k, n := range s.Opened {
		total.Opened[k] += n
	}
	for k, n := range s.ClosedByServer {
		total.ClosedByServer[k] += n
	}
	if total.FirstError == "" {
		total.FirstError = s.FirstError
	}
	total.OpenMs = max(total.OpenMs, s.OpenMs)
	return total
}
