package client

import (
	"sync"
	"time"
)

// Event is what a subscription's handler receives: a Publication, or a
// notice about the subscription — Subscribed, Gap, EpochChanged,
// Unsubscribed — or a presence change (Join, Leave). Handle it with a
// type switch. Subscribed with Lost() true, Gap and EpochChanged all mean
// "publications may be missing: reload this channel's state".
type Event interface{ isEvent() }

// Publication is one message of the channel, delivered exactly once and in
// offset order within its epoch.
type Publication struct {
	Channel string
	Offset  uint64 // every publication has one (codec/README.md §10); 0 only from a server that sends none
	Epoch   string
	Data    []byte // the published bytes (JSON connections: JSON text)
}

// Subscribed: the server confirmed the subscription, first after Subscribe
// (Resumed false) and again after every reconnect (Resumed true). A resume
// that could not deliver everything missed has Recovered false and a
// Reason: the application must reload the channel's state (Lost).
type Subscribed struct {
	Channel   string
	Resumed   bool
	Recovered bool
	Reason    string
	// The position publications continue from: the channel's top for a
	// new (or unrecovered) subscription, the last one delivered after a
	// recovered resume.
	Offset uint64
	Epoch  string
}

// Lost reports whether publications may have been missed.
func (s Subscribed) Lost() bool { return s.Resumed && !s.Recovered }

// Gap: publications From..To of the channel are lost for this client (the
// gateway could not refill them from history).
type Gap struct {
	Channel  string
	From, To uint64
}

// EpochChanged: the channel's history was lost (a broker restarted without
// persistence) and its offsets started again. Publications of Previous
// after LastOffset may never arrive.
type EpochChanged struct {
	Channel    string
	Previous   string
	Epoch      string
	LastOffset uint64 // the last offset of Previous delivered to the handler
}

// Unsubscribed: the subscription ended without Unsubscribe being called —
// the server ended it (Err is ErrServerUnsubscribed), refused a
// resubscription after a reconnect (Err is a *ServerError; 108 "unsubscribed
// by the server" when the server ended it while that resubscription was
// unanswered), or the client stopped (Err is why). It is the handler's last event; the client does
// not subscribe again by itself.
type Unsubscribed struct {
	Channel string
	Err     error
}

// Join and Leave: a client joined or left the channel's presence (in
// namespaces with join_leave on).
type Join struct{ Channel, Client, User string }

// Leave is the counterpart of Join.
type Leave struct{ Channel, Client, User string }

func (Publication) isEvent()  {}
func (Subscribed) isEvent()   {}
func (Gap) isEvent()          {}
func (EpochChanged) isEvent() {}
func (Unsubscribed) isEvent() {}
func (Join) isEvent()         {}
func (Leave) isEvent()        {}

// StateKind is the connection state.
type StateKind uint8

// Connection states, in the order a Client goes through them.
const (
	StateConnecting   StateKind = iota // an attempt is under way
	StateConnected                     // connected; subscriptions are being (re)sent
	StateDisconnected                  // lost; the next attempt comes after State.Delay
	StateClosed                        // stopped for good: Close, or Err says why
)

func (k StateKind) String() string {
	return [...]string{"connecting", "connected", "disconnected", "closed"}[k]
}

// State is one state change.
type State struct {
	Kind StateKind
	At   time.Time
	// Attempt counts connection attempts since the last healthy
	// connection (Connecting, Disconnected).
	Attempt int
	// Code and Reason: the close frame that ended the connection (0 when
	// there was none: a network error, a failed handshake).
	Code   int
	Reason string
	// Err: why the connection ended or the attempt failed (Disconnected);
	// why the client stopped (Closed; ErrClosed after Close).
	Err error
	// Delay: the wait before the next attempt (Disconnected).
	Delay time.Duration
}

// queued is one entry of the event queue: an event for a subscription's
// handler, or a state change for OnState.
type queued struct {
	sub   *Subscription
	ev    Event
	state *State
}

// eventQueue hands events to the one goroutine that calls handlers, so
// that handlers never run concurrently with each other and never block
// the connection's reader. Publications and pushes respect the limit (the
// reader drops the connection instead); state changes and notices from
// the client itself are always queued — there are a few per connection
// attempt, and the client does not reconnect while the queue is full.
type eventQueue struct {
	mu      sync.Mutex
	q       []queued
	limit   int
	wake    chan struct{} // a value: the queue may be non-empty
	drained chan struct{} // a value: the queue fell below half the limit
}

func newEventQueue(limit int) *eventQueue {
	return &eventQueue{limit: limit, wake: make(chan struct{}, 1), drained: make(chan struct{}, 1)}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// room reports whether n more limited events fit.
func (e *eventQueue) room(n int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.q)+n <= e.limit
}

func (e *eventQueue) push(x queued) {
	e.mu.Lock()
	e.q = append(e.q, x)
	e.mu.Unlock()
	notify(e.wake)
}

func (e *eventQueue) pop() (queued, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.q) == 0 {
		return queued{}, false
	}
	x := e.q[0]
	e.q[0] = queued{}
	e.q = e.q[1:]
	if len(e.q) == 0 {
		e.q = nil // let the backing array go
	}
	if len(e.q) < e.limit/2 {
		notify(e.drained)
	}
	return x, true
}

// belowHalf reports whether the handlers have caught up enough for a new
// connection.
func (e *eventQueue) belowHalf() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.q) < e.limit/2
}
