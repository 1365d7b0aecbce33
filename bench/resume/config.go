// Package resume is the resume storm: clients subscribed to a gateway on
// the Redis broker lose it (SIGTERM, a new process on the same port) while
// a second gateway keeps publishing, then all reconnect at once and
// subscribe with their last offset and epoch. Measured: how long until
// every client has recovered (reply recovered:true and every missed offset
// received, in order), how many did, and the Redis commands the recovery
// cost. "wsbench resume" parses the flags and calls Run.
package resume

import (
	"errors"
	"time"

	"github.com/wsgate/wsgate/bench/harness/progress"
	"github.com/wsgate/wsgate/bench/harness/server"
)

// Opts are the scenario's knobs ("wsbench resume -h" explains each).
type Opts struct {
	Clients, Channels, Messages, HistorySize int
	Rate                                     float64
	DrainWindow, Outage, Timeout             time.Duration
	PublishDuringStorm                       bool
}

// Validate reports the first knob out of range.
func (o *Opts) Validate() error {
	switch {
	case o.Channels < 1 || o.Clients < o.Channels:
		return errors.New("need 1 ≤ --channels ≤ --clients")
	case o.Messages < 1 || o.Rate <= 0:
		return errors.New("--messages and --rate must be positive")
	case o.HistorySize < 1:
		return errors.New("--history-size must be positive: without history there is nothing to resume from")
	case o.DrainWindow <= 0 || o.Outage < 0 || o.Timeout <= 0:
		return errors.New("--drain-window and --timeout must be positive, --outage not negative")
	}
	return nil
}

// Config is one run of the scenario.
type Config struct {
	Opts
	// RedisURL is the Redis both gateways share; "" starts a private
	// redis-server for the run.
	RedisURL string
	// Servers starts the gateways (wsgate on the Redis broker); Run adds
	// --redis-url and the scenario's own flags.
	Servers server.Launcher
	Bar     *progress.Bar
}
