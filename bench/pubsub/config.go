package pubsub

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Mode is how publishers pace themselves.
type Mode string

const (
	// Lockstep: each publisher waits for a publish reply before the next.
	Lockstep Mode = "lockstep"
	// Burst: each publisher keeps up to Window publishes unacknowledged.
	Burst Mode = "burst"
)

// Config describes one run. Zero values take the defaults noted.
type Config struct {
	// Addrs are gateway instances (IPv4 host:port); subscribers,
	// non-readers and publishers are spread round-robin over them.
	Addrs []string
	// Path is the client protocol endpoint (default /ws).
	Path string

	Channels        int // channels check:0 … check:N-1 (default 1)
	SubsPerChannel  int // reading subscribers per channel (default 2000)
	JSONSubscribers int // how many of them use wsgate.v1.json (default 0)

	Publishers int  // default 10
	Messages   int  // publications in total, split evenly (default 10000)
	Size       int  // payload bytes (default 64, at least PayloadHeader)
	Mode       Mode // default Lockstep
	Window     int  // Burst: unacknowledged publishes per publisher (default 256)
	// MaxLag, when positive, holds publishers back while a channel's
	// publications are MaxLag or more ahead of its slowest open reader
	// (see pacer). Non-readers do not count.
	MaxLag int

	// NonReaders subscribe to channel 0 with a small receive buffer and do
	// not read until ResumeAfter past the end of publishing; then they read
	// to the end and report the close code they find.
	NonReaders  int
	ResumeAfter time.Duration // default 500 ms

	// DialsInFlight bounds concurrent connects (0: default 1000).
	DialsInFlight int
	// SourceIPs for the subscriber pools (default loadclient's).
	SourceIPs []string
	// Timeout bounds the whole run (default 120 s).
	Timeout time.Duration
	// Stall ends the wait for deliveries when none arrived for this long
	// (default 10 s: a healthy gateway never pauses that long).
	Stall time.Duration
	// Log receives progress lines (default: discarded).
	Log *slog.Logger
}

// Defaults for zero Config fields.
const (
	DefaultPath           = "/ws"
	DefaultSubsPerChannel = 2000
	DefaultPublishers     = 10
	DefaultMessages       = 10000
	DefaultSize           = 64
	DefaultWindow         = 256
	DefaultResumeAfter    = 500 * time.Millisecond
	DefaultDialsInFlight  = 1000
	DefaultTimeout        = 120 * time.Second
	DefaultStall          = 10 * time.Second
)

func (c Config) withDefaults() Config {
	setDefault(&c.Path, DefaultPath)
	setDefault(&c.Channels, 1)
	setDefault(&c.SubsPerChannel, DefaultSubsPerChannel)
	setDefault(&c.Publishers, DefaultPublishers)
	setDefault(&c.Messages, DefaultMessages)
	setDefault(&c.Size, DefaultSize)
	setDefault(&c.Mode, Lockstep)
	setDefault(&c.Window, DefaultWindow)
	setDefault(&c.ResumeAfter, DefaultResumeAfter)
	setDefault(&c.DialsInFlight, DefaultDialsInFlight)
	setDefault(&c.Timeout, DefaultTimeout)
	setDefault(&c.Stall, DefaultStall)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// maxPublishers keeps a publisher id in the 16 bits pubHash gives it.
const maxPublishers = 1 << 16

func (c Config) validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("no gateway address")
	case c.Channels < 1 || c.SubsPerChannel < 1 || c.Publishers < 1 || c.Messages < 1:
		return errors.New("channels, subscribers per channel, publishers and messages must be positive")
	case c.Publishers > maxPublishers:
		return fmt.Errorf("at most %d publishers", maxPublishers)
	case c.JSONSubscribers < 0 || c.JSONSubscribers > c.Subscribers():
		return fmt.Errorf("json subscribers must be between 0 and %d", c.Subscribers())
	case c.NonReaders < 0 || c.MaxLag < 0:
		return errors.New("non-readers and max lag must not be negative")
	case c.Size < PayloadHeader:
		return fmt.Errorf("size must be at least %d bytes (the payload header)", PayloadHeader)
	case c.Mode != Lockstep && c.Mode != Burst:
		return fmt.Errorf("mode %q: want lockstep or burst", c.Mode)
	case c.Window < 1:
		return errors.New("window must be positive")
	}
	return nil
}

// Subscribers is the number of reading subscribers.
func (c Config) Subscribers() int { return c.Channels * c.SubsPerChannel }

// Conns is how many connections a run opens (each is one fd here).
func (c Config) Conns() int { return c.Subscribers() + c.NonReaders + c.Publishers }

// window is the publisher's effective window for its mode.
func (c Config) window() int {
	if c.Mode == Lockstep {
		return 1
	}
	return c.Window
}

// ChannelName is the name of channel i.
func ChannelName(i int) string { return "check:" + strconv.Itoa(i) }
