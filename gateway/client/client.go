package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Client is a connection to a wsgate gateway that stays connected: it
// reconnects with backoff, resubscribes with each subscription's position
// and delivers every publication exactly once, in order. Its methods are
// safe for concurrent use.
type Client struct {
	url  string
	opts Options
	log  *slog.Logger
	http *http.Client
	// ownHTTP: the transport is ours to close.
	ownHTTP bool

	events *eventQueue
	nextID atomic.Uint32

	// ctx is cancelled by Close; it bounds every connection attempt.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}  // closed when the client has stopped
	wg     sync.WaitGroup // run
	// dispatching is set while a handler or OnState runs (Close may be
	// called from one and must not wait for it).
	dispatching atomic.Bool
	dispatchEnd chan struct{} // closed when the dispatcher exits

	mu    sync.Mutex
	subs  map[string]*Subscription
	sess  *session      // the connected session, nil between connections
	ready chan struct{} // closed while sess != nil; replaced when it ends
	err   error         // why the client stopped, once done is closed
}

// Dial connects to a wsgate client endpoint (ws://host:port/ws) once and
// returns a Client that from then on reconnects by itself until Close or
// a close the server marks final. An error means no Client: the first
// attempt failed (it is not retried; ctx bounds it).
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		url:         url,
		opts:        opts,
		log:         opts.Logger.With("url", url),
		events:      newEventQueue(opts.QueueSize),
		done:        make(chan struct{}),
		dispatchEnd: make(chan struct{}),
		subs:        map[string]*Subscription{},
		ready:       make(chan struct{}),
	}
	c.http = opts.HTTPClient
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{
			Proxy:             http.ProxyFromEnvironment,
			DisableKeepAlives: true, // an upgraded connection is not pooled anyway
		}}
		c.ownHTTP = true
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.setState(State{Kind: StateConnecting})
	s, err := c.connect(ctx)
	if err != nil {
		c.cancel()
		c.closeTransport()
		return nil, err
	}
	go c.dispatch()
	c.wg.Add(1)
	go c.run(s)
	return c, nil
}

// Close closes the connection (1000) and stops the client: no reconnect,
// no handler call after Close returns except one already running (Close
// may be called from a handler). Subscriptions end without an event.
// Close returns once the client's goroutines have ended.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	if !c.dispatching.Load() {
		<-c.dispatchEnd
	}
	return nil
}

// Done is closed when the client has stopped: after Close, or when the
// server closed it for good (see Err).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err reports why the client stopped: nil while it runs, ErrClosed after
// Close, else the final error (a *CloseError with a 45xx code, a
// *HandshakeError 401/403, an error wrapping ErrTokenSource, …).
func (c *Client) Err() error {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	default:
		return nil
	}
}

// run owns the connection: it serves a session until it ends, then waits
// out the backoff and connects again, until Close or a final error.
func (c *Client) run(s *session) {
	defer c.wg.Done()
	attempt := 0
	for {
		err := c.serve(s)
		if c.isClosing() {
			c.stop(ErrClosed)
			return
		}
		v := judge(err)
		if v.stop {
			c.stop(err)
			return
		}
		if time.Since(s.started) >= c.opts.Backoff.HealthyAfter {
			attempt = 0
		}
		code, reason := closeOf(err)
		for {
			delay := c.opts.Backoff.delay(attempt, v)
			attempt++
			c.log.Info("disconnected", "err", err, "retry_in", delay, "attempt", attempt)
			c.setState(State{Kind: StateDisconnected, Attempt: attempt, Code: code, Reason: reason, Err: err, Delay: delay})
			if !c.sleep(delay) {
				c.stop(ErrClosed)
				return
			}
			c.setState(State{Kind: StateConnecting, Attempt: attempt})
			if s, err = c.connect(c.ctx); err == nil {
				break
			}
			if c.isClosing() {
				c.stop(ErrClosed)
				return
			}
			if v = judge(err); v.stop {
				c.stop(err)
				return
			}
			code, reason = 0, ""
		}
	}
}

// serve makes s the current session, resubscribes, and waits until s ends
// (or Close, which closes it). It returns why s ended.
func (c *Client) serve(s *session) error {
	c.activate(s)
	select {
	case <-s.done:
	case <-c.ctx.Done():
		s.close(websocket.StatusNormalClosure, "client closed")
	}
	s.wait()
	s.abortRead() // releases the read context (the socket is closed by now)
	c.deactivate(s)
	return s.cause()
}

// sleep waits d, and then until the handlers have caught up with the
// event queue; false when Close came first.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
		return false
	}
	for !c.events.belowHalf() {
		select {
		case <-c.events.drained:
		case <-c.ctx.Done():
			return false
		}
	}
	return true
}

func (c *Client) isClosing() bool { return c.ctx.Err() != nil }

// stop records the final error, ends every subscription and wakes
// everyone waiting on the client.
func (c *Client) stop(err error) {
	c.mu.Lock()
	c.err = err
	var ended []*Subscription // confirmed ones: a pending Subscribe returns err instead
	for _, sub := range c.subs {
		sub.state = subRemoved
		if sub.confirmed != nil {
			sub.confirm(err)
			continue
		}
		ended = append(ended, sub)
	}
	c.subs = map[string]*Subscription{}
	c.mu.Unlock()
	if !errors.Is(err, ErrClosed) {
		c.log.Warn("stopped", "err", err)
		for _, sub := range ended {
			c.events.push(queued{sub: sub, ev: Unsubscribed{Channel: sub.channel, Err: err}})
		}
	}
	code, reason := closeOf(err)
	c.setState(State{Kind: StateClosed, Code: code, Reason: reason, Err: err})
	close(c.done)
	c.closeTransport()
}

func (c *Client) closeTransport() {
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
}

func closeOf(err error) (int, string) {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason
	}
	return 0, ""
}

func (c *Client) setState(s State) {
	s.At = time.Now()
	c.events.push(queued{state: &s})
}

// dispatch calls handlers and OnState, one event at a time, in order.
// After Close it delivers nothing more; after a final error it delivers
// what is queued (the Unsubscribed notices, the Closed state) and exits.
func (c *Client) dispatch() {
	defer close(c.dispatchEnd)
	for c.ctx.Err() == nil {
		if x, ok := c.events.pop(); ok {
			c.deliver(x)
			continue
		}
		select {
		case <-c.events.wake:
		case <-c.ctx.Done():
		case <-c.done:
			for c.ctx.Err() == nil {
				x, ok := c.events.pop()
				if !ok {
					return
				}
				c.deliver(x)
			}
		}
	}
}

func (c *Client) deliver(x queued) {
	c.dispatching.Store(true)
	defer c.dispatching.Store(false)
	if x.state != nil {
		if c.opts.OnState != nil {
			c.opts.OnState(*x.state)
		}
		return
	}
	if !c.live(x.sub) {
		return // Unsubscribe was called meanwhile: the handler is not called again
	}
	x.sub.handler(x.ev)
}

// session returns the connected session, waiting for one until ctx ends or
// the client stops.
func (c *Client) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		s, ready := c.sess, c.ready
		c.mu.Unlock()
		if s != nil {
			return s, nil
		}
		select {
		case <-ready:
		case <-c.done:
			return nil, c.Err()
		case <-ctx.Done():
			return nil, fmt.Errorf("client: not connected: %w", ctx.Err())
		}
	}
}

// activate makes s the current session and resubscribes every
// subscription on it, with its position.
func (c *Client) activate(s *session) {
	c.mu.Lock()
	c.sess = s
	close(c.ready)
	var subs []*Subscription
	for _, sub := range c.subs {
		sub.sess, sub.state = s, subSubscribing
		subs = append(subs, sub)
	}
	c.mu.Unlock()
	c.log.Info("connected", "resubscribing", len(subs))
	c.setState(State{Kind: StateConnected})
	for _, sub := range subs {
		c.sendSubscribe(s, sub)
	}
}

// deactivate forgets s: its subscriptions wait for the next session, its
// pending commands fail with ErrDisconnected.
func (c *Client) deactivate(s *session) {
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
		c.ready = make(chan struct{})
	}
	for _, sub := range c.subs {
		if sub.sess == s {
			sub.sess, sub.state = nil, subPending
		}
	}
	c.mu.Unlock()
	s.failPending()
}
