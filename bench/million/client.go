package million

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// ClientConfig is one load-client process's share of a run.
type ClientConfig struct {
	// Addr is the servers' shared address (IPv4 host:port); Path the
	// client protocol endpoint (default /ws).
	Addr string
	Path string
	// Conns connections, bound round-robin to Sources.
	Conns   int
	Sources []string
	// Channel every connection subscribes to right after its upgrade.
	Channel string
	// DialsInFlight bounds concurrent connects and handshakes, DialRate
	// (when positive) the connects started per second.
	DialsInFlight    int
	DialRate         float64
	HandshakeTimeout time.Duration
	// Redials is how often a failed dial is started again (loadclient
	// Config.Redials): a client that reconnects after a handshake the
	// overloaded host did not finish in time.
	Redials int
	// ReportEvery is the period of the report lines (default 1 s).
	ReportEvery time.Duration
}

// DefaultReportEvery is the default period of report lines.
const DefaultReportEvery = time.Second

// subscribeID is the id of every connection's one subscribe command.
const subscribeID = 1

// RunClient is a load-client process: it prints a "ready" report, then
// obeys the commands on in (CmdDial, CmdStop, CmdClose) and prints a report
// line every cfg.ReportEvery until in ends or ctx is done. Every connection
// subscribes to cfg.Channel as soon as it is upgraded, answers pings, and
// records each stamped message it receives. At the end every connection is
// reset (no TIME_WAIT left on either side).
func RunClient(ctx context.Context, cfg ClientConfig, in io.Reader, out io.Writer) error {
	if cfg.Path == "" {
		cfg.Path = "/ws"
	}
	if cfg.ReportEvery <= 0 {
		cfg.ReportEvery = DefaultReportEvery
	}
	if cfg.Conns < 1 || cfg.Channel == "" {
		return errors.New("million client: needs connections and a channel")
	}
	c := newCrowd(cfg)
	w := &reportWriter{enc: json.NewEncoder(out)}
	if err := w.write(c.report(EventReady)); err != nil {
		return err
	}
	cmds := make(chan string)
	go readCommands(in, cmds) // ends at EOF, as the process does

	ticker := time.NewTicker(cfg.ReportEvery)
	defer ticker.Stop()
	defer c.close() // ctx done or stdin closed without CmdClose
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			// After the final report nobody reads: writing more could
			// block on a full pipe and miss the end of stdin.
			if c.final {
				continue
			}
			if err := w.write(c.report(EventReport)); err != nil {
				return err
			}
		case cmd, ok := <-cmds:
			if !ok {
				return nil
			}
			if err := c.obey(ctx, cmd, w); err != nil {
				return err
			}
		}
	}
}

// readCommands sends every line of in to cmds and closes it at EOF.
func readCommands(in io.Reader, cmds chan<- string) {
	defer close(cmds)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmds <- strings.TrimSpace(sc.Text())
	}
}

// reportWriter serializes report lines.
type reportWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *reportWriter) write(r Report) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(r); err != nil {
		return fmt.Errorf("million client: write report: %w", err)
	}
	return nil
}

// crowd is one process's connections and what they saw.
//
// Concurrency: loadclient runs the callbacks of one connection on one
// worker at a time; per-connection state is atomic anyway because the
// report goroutine reads it while they run.
type crowd struct {
	cfg       ClientConfig
	subscribe []byte

	pool       *loadclient.Pool
	stopDials  context.CancelFunc
	closedOnce sync.Once
	final      bool              // the final report was written
	handshakes *loadclient.Stats // with percentiles, once every dial ended

	subscribed, subErrors atomic.Int64
	firstSubErr           atomic.Value // string: the first subscribe error reply
	dups, bad             atomic.Int64
	got                   []atomic.Uint64 // by connection: bit s = message s received
	msgs                  [MaxMessages]message
}

// message is the deliveries of one sequence number in this process.
type message struct {
	latency atomic.Pointer[hist.Hist] // allocated by the first delivery
	last    atomic.Int64              // Unix ns of the latest delivery
}

func newCrowd(cfg ClientConfig) *crowd {
	return &crowd{cfg: cfg, subscribe: wire.Subscribe(subscribeID, cfg.Channel), got: make([]atomic.Uint64, cfg.Conns)}
}

// obey carries out one command.
func (c *crowd) obey(ctx context.Context, cmd string, w *reportWriter) error {
	switch cmd {
	case CmdDial:
		if c.pool != nil {
			return nil // dialing once is the whole job
		}
		dialCtx, cancel := context.WithCancel(ctx)
		pool, err := loadclient.Start(dialCtx, loadclient.Config{
			Addr: c.cfg.Addr, Path: c.cfg.Path, Conns: c.cfg.Conns, SourceIPs: c.cfg.Sources,
			DialsInFlight: c.cfg.DialsInFlight, DialRate: c.cfg.DialRate, HandshakeTimeout: c.cfg.HandshakeTimeout,
			Redials: c.cfg.Redials,
			OnOpen:  c.onOpen, OnMessage: c.onMessage, ResetOnClose: true,
			// Timers only end handshakes and lingers here: a second is
			// plenty, and ~50 processes waking 10 times a second are not
			// free on two cores.
			TimerTick: time.Second,
		})
		if err != nil {
			cancel()
			return fmt.Errorf("million client: %w", err)
		}
		c.pool, c.stopDials = pool, cancel
	case CmdStop:
		if c.stopDials != nil {
			c.stopDials()
		}
	case CmdClose:
		if c.final {
			return nil
		}
		c.close()
		c.final = true
		return w.write(c.report(EventFinal))
	}
	return nil
}

// close aborts the dials and resets every connection, once.
func (c *crowd) close() {
	c.closedOnce.Do(func() {
		if c.pool == nil {
			return
		}
		c.stopDials()
		<-c.pool.Dialed()
		_ = c.pool.Close() // only the event loop's stop can fail; the fds are closed anyway
	})
}

func (c *crowd) onOpen(conn *loadclient.Conn) {
	// Send masks a copy into a frame of this connection's own.
	if err := conn.Send(loadclient.OpBinary, c.subscribe); err != nil {
		if c.subErrors.Add(1) == 1 {
			c.firstSubErr.Store("send: " + err.Error())
		}
	}
}

func (c *crowd) onMessage(conn *loadclient.Conn, _ byte, payload []byte) {
	now := time.Now()
	p, err := wire.ParsePush(payload)
	if err != nil {
		c.bad.Add(1)
		return
	}
	switch {
	case p.IsReply():
		if p.ID != subscribeID {
			c.bad.Add(1)
		} else if p.HasError {
			if c.subErrors.Add(1) == 1 {
				c.firstSubErr.Store(fmt.Sprintf("%d %s", p.ErrorCode, p.ErrorMessage))
			}
		} else {
			c.subscribed.Add(1)
		}
	case p.IsMessage():
		seq, sent, ok := wire.ParseStamp(p.Data)
		if !ok || seq >= MaxMessages {
			c.bad.Add(1)
			return
		}
		bit := uint64(1) << seq
		if c.got[conn.Index()].Or(bit)&bit != 0 {
			c.dups.Add(1)
			return
		}
		c.msgs[seq].record(now, now.Sub(sent))
	}
}

func (m *message) record(now time.Time, latency time.Duration) {
	h := m.latency.Load()
	if h == nil {
		m.latency.CompareAndSwap(nil, new(hist.Hist))
		h = m.latency.Load()
	}
	h.Record(latency)
	for t := now.UnixNano(); ; {
		last := m.last.Load()
		if t <= last || m.last.CompareAndSwap(last, t) {
			return
		}
	}
}

// report takes a snapshot of everything.
func (c *crowd) report(event string) Report {
	r := Report{Event: event, TimeNs: time.Now().UnixNano(), Conns: c.cfg.Conns,
		Subscribed: int(c.subscribed.Load()), SubscribeErrors: int(c.subErrors.Load()),
		Duplicates: c.dups.Load(), Bad: c.bad.Load()}
	if e, ok := c.firstSubErr.Load().(string); ok {
		r.FirstSubscribeError = e
	}
	if c.pool != nil {
		select {
		case <-c.pool.Dialed():
			r.Dialed = true
		default:
		}
		st := c.pool.Counts()
		if r.Dialed {
			// Percentiles sort every handshake's latency: once, when they
			// are final.
			if c.handshakes == nil {
				full := c.pool.Stats()
				c.handshakes = &full
			}
			hs := c.handshakes
			r.HandshakeP50Ms, r.HandshakeP99Ms, r.HandshakeMaxMs = ms(hs.HandshakeP50), ms(hs.HandshakeP99), ms(hs.HandshakeMax)
		}
		r.Upgraded, r.Failed, r.Redials, r.FirstError = st.Connected, st.Failed, st.Redials, st.FirstError
		r.DialSeconds = st.DialDuration.Seconds()
		r.Closed, r.Closes, r.ProtocolErrors, r.Pings = st.Closed, st.Closes, st.ProtocolErrors, st.PingsIn
	}
	for i := range c.got {
		if set := c.got[i].Load(); set != 0 {
			if r.Received == nil {
				r.Received = map[uint64]int{}
			}
			r.Received[set]++
		}
	}
	if r.Received != nil {
		r.Received[0] = c.cfg.Conns - sum(r.Received)
	}
	for s := range c.msgs {
		if h := c.msgs[s].latency.Load(); h != nil {
			r.Messages = append(r.Messages, MessageReport{Seq: uint64(s), Latency: h.Snapshot(), LastNs: c.msgs[s].last.Load()})
		}
	}
	return r
}

func sum(m map[uint64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
