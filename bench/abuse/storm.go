package abuse

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/wsgate/wsgate/bench/harness/drive"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// stormSource is the source address of a storm's i-th connection out of
// ips addresses: the first one gets two shares, the others one each, so
// that address passes --max-conns-per-ip while the total is still below
// --max-conns and both caps are hit.
func stormSource(i, ips int) string {
	k := 0
	if ips > 1 {
		k = max(0, i%(ips+1)-1)
	}
	return fmt.Sprintf("127.0.1.%d", k+1)
}

// StormStats is what the connection storm saw, over its rounds.
type StormStats struct {
	Rounds   int `json:"rounds"`
	Dialed   int `json:"dialed"`
	Accepted int `json:"accepted"` // 101
	// Refused: by HTTP status (429 per-IP, 503 total), "other" for dials
	// that failed without a status (timeouts, resets).
	Refused    map[string]int `json:"refused"`
	FirstError string         `json:"first_error,omitempty"`
	// MaxPerIP is the most upgraded connections one source address held
	// at once; MaxAccepted the most the storm held in one round.
	MaxPerIP    int `json:"max_per_ip"`
	MaxAccepted int `json:"max_accepted_in_a_round"`
	// Per round: accepted, then refusals.
	PerRound []StormRound `json:"per_round"`
}

type StormRound struct {
	Accepted int            `json:"accepted"`
	Refused  map[string]int `json:"refused"`
	DialMs   float64        `json:"dial_ms"`
}

// storm dials conns connections at once from ips source addresses, holds
// the upgraded ones for hold, closes them all and starts again, until
// stopped.
type storm struct {
	addr     string
	conns    int
	ips      int
	hold     time.Duration
	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan *StormStats
}

func startStorm(addr string, conns, ips int, hold time.Duration) *storm {
	s := &storm{addr: addr, conns: conns, ips: ips, hold: hold, stopCh: make(chan struct{}), done: make(chan *StormStats, 1)}
	go func() { s.done <- s.run() }()
	return s
}

func (s *storm) stop() *StormStats {
	s.stopOnce.Do(func() { close(s.stopCh) })
	return <-s.done
}

func (s *storm) stopped() bool {
	select {
	case <-s.stopCh:
		return true
	default:
		return false
	}
}

func (s *storm) run() *StormStats {
	st := &StormStats{Refused: map[string]int{}}
	for !s.stopped() {
		r, held, firstErr := s.round()
		st.Rounds++
		st.Dialed += s.conns
		st.Accepted += r.Accepted
		st.MaxAccepted = max(st.MaxAccepted, r.Accepted)
		for k, v := range r.Refused {
			st.Refused[k] += v
		}
		if st.FirstError == "" {
			st.FirstError = firstErr
		}
		perIP := map[string]int{}
		for _, c := range held {
			perIP[c.LocalAddr().(*net.TCPAddr).IP.String()]++
		}
		for _, n := range perIP {
			st.MaxPerIP = max(st.MaxPerIP, n)
		}
		st.PerRound = append(st.PerRound, r)
		select {
		case <-s.stopCh:
		case <-time.After(s.hold):
		}
		for _, c := range held {
			_ = c.Close()
		}
		select {
		case <-s.stopCh:
		case <-time.After(200 * time.Millisecond): // let the gateway see the closes
		}
	}
	return st
}

// round dials every connection at once and returns the upgraded ones.
func (s *storm) round() (StormRound, []net.Conn, string) {
	type outcome struct {
		conn   net.Conn
		status string
		err    error
	}
	out := make([]outcome, s.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range s.conns {
		wg.Go(func() {
			c, _, status, err := wsDial(s.addr, stormSource(i, s.ips))
			out[i] = outcome{c, status, err}
		})
	}
	wg.Wait()
	r := StormRound{Refused: map[string]int{}, DialMs: results.Millis(time.Since(start))}
	var held []net.Conn
	var firstErr string
	for _, o := range out {
		switch {
		case o.err != nil:
			r.Refused["other"]++
			if firstErr == "" {
				firstErr = o.err.Error()
			}
		case o.status == "101":
			r.Accepted++
			held = append(held, o.conn)
		default:
			r.Refused[o.status]++
		}
	}
	return r, held, firstErr
}

// wsDial connects from src and upgrades; the connection (and a reader of
// it that starts with the bytes that came with the response, which may
// hold the first frames) is returned open only for a 101. status is the
// response's ("" when none was read).
func wsDial(addr, src string) (net.Conn, io.Reader, string, error) {
	c, err := loadclient.Dialer{Src: src, Timeout: 10 * time.Second}.Dial(context.Background(), addr)
	if err != nil {
		return nil, nil, "", err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	status, rest, err := loadclient.Upgrade(c, addr, drive.Path, "")
	if err != nil || status != "101" {
		_ = c.Close()
		return nil, nil, status, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, io.MultiReader(bytes.NewReader(rest), c), status, nil
}

// mergeInto adds one abuser's storm stats to the total so far (nil: none).
func (s *StormStats) mergeInto(total *StormStats) *StormStats {
	switch {
	case s == nil:
		return total
	case total == nil:
		return s
	}
	total.Rounds += s.Rounds
	total.Dialed += s.Dialed
	total.Accepted += s.Accepted
	if total.Refused == nil {
		total.Refused = map[string]int{}
	}
	for k, n := range s.Refused {
		total.Refused[k] += n
	}
	if total.FirstError == "" {
		total.FirstError = s.FirstError
	}
	total.MaxPerIP = max(total.MaxPerIP, s.MaxPerIP)
	total.MaxAccepted = max(total.MaxAccepted, s.MaxAccepted)
	total.PerRound = append(total.PerRound, s.PerRound...)
	return total
}
