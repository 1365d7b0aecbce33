package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// appClient is what the scenario needs from a client library: one
// application connection that stays connected through the balancer
// (reconnecting with jittered backoff), resubscribes every channel with its
// last offset and epoch after each reconnect, drops repeated offsets,
// reports every notice, and publishes — retrying a publication whose
// outcome is unknown with the same idempotency key. wsClient implements it
// with the wire protocol of codec/README.md; the Go client library
// (gateway/client) can replace it through an adapter with no change to the
// scenario or its checks.
type appClient interface {
	// Run keeps the connection up until ctx ends (or the reconnect budget
	// is spent: a permanent failure, reported to the log).
	Run(ctx context.Context)
	// Publish sends one publication on channel; done is called exactly
	// once with the outcome.
	Publish(channel string, data []byte, key string, done func(pubOutcome))
	// Position is the last offset seen (delivered or announced as missed)
	// on channel and its epoch; ok is false before the first subscribe.
	Position(channel string) (epoch string, offset uint64, ok bool)
}

// pubOutcome is how one publication ended for its publisher.
type pubOutcome struct {
	acked    bool // the gateway (or Redis) confirmed it, with offset and epoch
	offset   uint64
	epoch    string
	replayed bool   // acknowledged as a repeat of an earlier attempt
	err      string // why it was not acknowledged
}

// clientConfig is shared by every connection of a scenario.
type clientConfig struct {
	url string // wss://balancer/ws
	tls *tls.Config
	// maxAttempts consecutive failed handshakes make a permanent failure.
	maxAttempts int
	// first and max bound the jittered exponential backoff.
	first, max time.Duration
	// publishTries bounds attempts per publication (unknown outcomes and
	// retryable errors are retried with the same idempotency key).
	publishTries int
}

func defaultClientConfig(url string, tc *tls.Config) clientConfig {
	return clientConfig{url: url, tls: tc, maxAttempts: 15, first: 100 * time.Millisecond, max: 2 * time.Second, publishTries: 3}
}

// backoff is the sleep before reconnect attempt n (n = 0: right after a
// lost connection): full jitter over an exponentially growing ceiling.
func (c clientConfig) backoff(n int) time.Duration {
	ceil := c.first << min(n, 10)
	if ceil > c.max || ceil <= 0 {
		ceil = c.max
	}
	return rand.N(ceil) + time.Millisecond
}

// wsClient is the scenario's test client: JSON protocol over gorilla's
// WebSocket client, one reader goroutine per connection.
type wsClient struct {
	id       int
	cfg      clientConfig
	dialer   *websocket.Dialer
	channels []string
	log      *clientLog

	wmu sync.Mutex // serializes writes on conn

	mu      sync.Mutex // guards everything below
	conn    *websocket.Conn
	nextID  uint32
	pending map[uint32]*pending
	pos     map[string]*position
	retry   []*pubAttempt // unknown outcomes, resent after the next connect
}

type position struct {
	epoch  string
	offset uint64
}

// pending is a command waiting for its reply.
type pending struct {
	subscribe string // channel, for a subscribe
	resumed   bool   // the subscribe carried a position
	pub       *pubAttempt
}

type pubAttempt struct {
	channel string
	data    []byte
	key     string
	tries   int
	done    func(pubOutcome)
}

func newWSClient(id int, cfg clientConfig, channels []string, log *clientLog) *wsClient {
	return &wsClient{
		id: id, cfg: cfg, channels: channels, log: log,
		dialer: &websocket.Dialer{
			TLSClientConfig:  cfg.tls,
			HandshakeTimeout: 5 * time.Second,
			Subprotocols:     []string{"wsgate.v1.json"},
		},
		pending: map[uint32]*pending{},
		pos:     map[string]*position{},
	}
}

func (c *wsClient) Run(ctx context.Context) {
	fails := 0
	for ctx.Err() == nil {
		conn, resp, err := c.dialer.DialContext(ctx, c.cfg.url, nil)
		if err == nil && conn.Subprotocol() != "wsgate.v1.json" {
			err = fmt.Errorf("subprotocol %q", conn.Subprotocol())
			conn.Close()
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fails++
			c.log.handshakeFailed(handshakeError(resp, err))
			if fails >= c.cfg.maxAttempts {
				c.log.gaveUp(fails)
				return
			}
			sleep(ctx, c.cfg.backoff(fails))
			continue
		}
		fails = 0
		c.log.connected(time.Now())
		code := c.session(ctx, conn)
		if ctx.Err() != nil {
			return // the test ended it
		}
		c.log.disconnected(time.Now(), code)
		sleep(ctx, c.cfg.backoff(0))
	}
}

// handshakeError names a failed handshake by HTTP status when there was
// one (the balancer's or the gateway's answer), else by the error.
func handshakeError(resp *http.Response, err error) string {
	if resp != nil {
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error: " + err.Error()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// session serves one connection: subscribe (resuming), resend unknown
// publications, read until the connection ends. It returns the close code
// (1006 without a close frame).
func (c *wsClient) session(ctx context.Context, conn *websocket.Conn) int {
	stop := make(chan struct{})
	defer close(stop)
	go func() { // ends the blocked read when the test ends
		select {
		case <-ctx.Done():
			conn.Close()
		case <-stop:
		}
	}()
	c.mu.Lock()
	c.conn = conn
	var frames [][]byte
	for _, ch := range c.channels {
		cmd := map[string]any{"id": c.newIDLocked(&pending{subscribe: ch}), "cmd": "subscribe", "channel": ch}
		if p := c.pos[ch]; p != nil {
			cmd["offset"], cmd["epoch"] = p.offset, p.epoch
			c.pending[cmd["id"].(uint32)].resumed = true
		}
		frames = append(frames, mustJSON(cmd))
	}
	retry := c.retry
	c.retry = nil
	for _, a := range retry {
		frames = append(frames, c.publishFrameLocked(a))
	}
	c.mu.Unlock()
	for _, f := range frames {
		c.write(conn, f)
	}

	code := websocket.CloseAbnormalClosure
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			break
		}
		c.handle(msg)
	}
	conn.Close()
	c.lost()
	return code
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of plain values are marshalled
	}
	return b
}

func (c *wsClient) newIDLocked(p *pending) uint32 {
	c.nextID++
	c.pending[c.nextID] = p
	return c.nextID
}

func (c *wsClient) publishFrameLocked(a *pubAttempt) []byte {
	a.tries++
	id := c.newIDLocked(&pending{pub: a})
	return mustJSON(map[string]any{"id": id, "cmd": "publish", "channel": a.channel,
		"data": json.RawMessage(a.data), "idempotency_key": a.key})
}

// write sends one text frame; a failed write ends the session through the
// reader, which then fails what is pending.
func (c *wsClient) write(conn *websocket.Conn, frame []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		conn.Close()
	}
}

// lost runs when a connection ended: pending publications have an unknown
// outcome and are retried after the next connect (same key), pending
// subscribes are simply sent again.
func (c *wsClient) lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = nil
	for id, p := range c.pending {
		delete(c.pending, id)
		if p.pub != nil {
			c.retryLocked(p.pub, "connection lost before the reply")
		}
	}
}

// retryLocked queues a for the next connection, or ends it as unknown when
// its tries are spent.
func (c *wsClient) retryLocked(a *pubAttempt, why string) {
	if a.tries >= c.cfg.publishTries {
		a.done(pubOutcome{err: fmt.Sprintf("gave up after %d tries: %s", a.tries, why)})
		return
	}
	c.retry = append(c.retry, a)
}

func (c *wsClient) Publish(channel string, data []byte, key string, done func(pubOutcome)) {
	a := &pubAttempt{channel: channel, data: data, key: key, done: done}
	c.mu.Lock()
	conn := c.conn
	if conn == nil {
		c.mu.Unlock()
		done(pubOutcome{err: "not connected"})
		return
	}
	frame := c.publishFrameLocked(a)
	c.mu.Unlock()
	c.write(conn, frame)
}

func (c *wsClient) Position(channel string) (string, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pos[channel]
	if p == nil {
		return "", 0, false
	}
	return p.epoch, p.offset, true
}

// serverFrame is every field of every server frame the client reads.
type serverFrame struct {
	Type      string          `json:"type"`
	ID        uint32          `json:"id"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Epoch     string          `json:"epoch"`
	Previous  string          `json:"previous"`
	From      uint64          `json:"from"`
	To        uint64          `json:"to"`
	Recovered *bool           `json:"recovered"`
	Reason    string          `json:"reason"`
	Replayed  bool            `json:"replayed"`
	Data      json.RawMessage `json:"data"`
	B64       []byte          `json:"b64"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// handle applies one server frame (codec/README.md §5, §10).
func (c *wsClient) handle(msg []byte) {
	var f serverFrame
	if err := json.Unmarshal(msg, &f); err != nil {
		c.log.anomaly("undecodable frame %q: %v", msg, err)
		return
	}
	switch f.Type {
	case "reply":
		if conn, frame := c.reply(&f); frame != nil {
			c.write(conn, frame) // a publish retried at once
		}
	case "message":
		c.message(&f)
	case "gap":
		c.mu.Lock()
		p := c.pos[f.Channel]
		if p == nil {
			c.mu.Unlock()
			c.log.anomaly("gap on %s before its subscribe reply", f.Channel)
			return
		}
		c.log.notice(notice{kind: noticeGap, channel: f.Channel, epoch: p.epoch, from: f.From, to: f.To})
		p.offset = max(p.offset, f.To)
		c.mu.Unlock()
	case "epoch":
		c.mu.Lock()
		if p := c.pos[f.Channel]; p != nil && p.epoch != f.Epoch {
			c.log.notice(notice{kind: noticeEpoch, channel: f.Channel, epoch: p.epoch, from: p.offset + 1, to: openEnd})
			p.epoch, p.offset = f.Epoch, 0
		}
		c.mu.Unlock()
	}
}

// reply matches a reply with its command; it returns a frame to send
// when a publication is retried at once.
func (c *wsClient) reply(f *serverFrame) (*websocket.Conn, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[f.ID]
	if p == nil {
		c.log.anomaly("reply to unknown command %d", f.ID)
		return nil, nil
	}
	delete(c.pending, f.ID)
	switch {
	case p.pub != nil:
		return c.published(p.pub, f)
	case f.Error != nil:
		// A refused subscribe (e.g. broker not ready): end the connection
		// and resubscribe on the next one.
		c.log.anomaly("subscribe %s: error %d %s", p.subscribe, f.Error.Code, f.Error.Message)
		if c.conn != nil {
			c.conn.Close()
		}
	default:
		c.subscribed(p, f)
	}
	return nil, nil
}

func (c *wsClient) subscribed(p *pending, f *serverFrame) {
	ch := p.subscribe
	pos := c.pos[ch]
	if pos == nil { // first subscribe: everything after this position is expected
		c.pos[ch] = &position{epoch: f.Epoch, offset: f.Offset}
		c.log.subscribed(ch, f.Epoch, f.Offset)
		return
	}
	c.log.resubscribed(ch)
	if f.Recovered != nil && *f.Recovered {
		return
	}
	// Not recovered: subscribed from the current top; what lies between is
	// announced as missed.
	if !p.resumed || f.Recovered == nil {
		c.log.anomaly("resume of %s: reply without recovered", ch)
	}
	if f.Epoch != pos.epoch {
		c.log.notice(notice{kind: noticeNotRecovered, channel: ch, epoch: pos.epoch, from: pos.offset + 1, to: openEnd, reason: f.Reason})
		c.log.notice(notice{kind: noticeNotRecovered, channel: ch, epoch: f.Epoch, from: 1, to: f.Offset, reason: f.Reason})
	} else if f.Offset > pos.offset {
		c.log.notice(notice{kind: noticeNotRecovered, channel: ch, epoch: pos.epoch, from: pos.offset + 1, to: f.Offset, reason: f.Reason})
	}
	pos.epoch, pos.offset = f.Epoch, max(pos.offset, f.Offset)
}

// retryable publish errors (codec/README.md §6): rate limited, internal
// error before anything was done, outcome unknown.
var retryableCodes = map[int]bool{107: true, 111: true, 113: true}

func (c *wsClient) published(a *pubAttempt, f *serverFrame) (*websocket.Conn, []byte) {
	if f.Error == nil {
		a.done(pubOutcome{acked: true, offset: f.Offset, epoch: f.Epoch, replayed: f.Replayed})
		return nil, nil
	}
	why := fmt.Sprintf("error %d %s", f.Error.Code, f.Error.Message)
	if !retryableCodes[f.Error.Code] {
		a.done(pubOutcome{err: why})
		return nil, nil
	}
	if c.conn != nil && a.tries < c.cfg.publishTries {
		return c.conn, c.publishFrameLocked(a)
	}
	c.retryLocked(a, why)
	return nil, nil
}

func (c *wsClient) message(f *serverFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pos[f.Channel]
	if p == nil {
		c.log.anomaly("message on %s before its subscribe reply", f.Channel)
		return
	}
	epoch := f.Epoch
	if epoch == "" {
		epoch = p.epoch // servers that do not send the epoch on messages yet
	}
	if epoch != p.epoch {
		// History was lost: what the old epoch had after our position,
		// and the new one before this message, are announced as missed.
		c.log.notice(notice{kind: noticeEpoch, channel: f.Channel, epoch: p.epoch, from: p.offset + 1, to: openEnd})
		if f.Offset > 1 {
			c.log.notice(notice{kind: noticeEpoch, channel: f.Channel, epoch: epoch, from: 1, to: f.Offset - 1})
		}
		p.epoch, p.offset = epoch, 0
	}
	if f.Offset <= p.offset {
		c.log.repeat()
		return
	}
	p.offset = f.Offset
	c.log.delivered(f.Channel, epoch, f.Offset, f.Data)
}
