// Package abuse is the abuse scenario: well-behaved clients doing protocol
// ping round trips at a modest rate, measured alone and then while an
// abuser works on the same gateway — one client flooding publishes
// (against --command-rate), a connection storm (against --max-conns-per-ip
// and --max-conns), or clients stalled mid-handshake and mid-frame.
// "wsbench abuse" parses the flags and calls Run; "wsbench abuser" runs an
// abuser in a process of its own through RunAbuser.
package abuse

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/harness/procfs"
	"github.com/wsgate/wsgate/bench/harness/progress"
	"github.com/wsgate/wsgate/bench/harness/server"
)

// Abuse variants.
const (
	VariantFlood = "flood"
	VariantStorm = "storm"
	VariantStall = "stall"
)

// Source addresses: the well-behaved clients, the flooder and the storm
// come from different loopback addresses, so per-IP limits see them apart.
const (
	politeIP = "127.0.0.1"
	floodIP  = "127.0.2.1"
)

// CloseRateLimitedCode is the close code of a connection over its command
// rate (codec/README.md §8).
const CloseRateLimitedCode = 4029

// Opts are the scenario's knobs ("wsbench abuse -h" explains each).
type Opts struct {
	Clients        int
	PingRate       float64
	Phase, Warmup  time.Duration
	Variants       string
	CommandRate    float64
	CommandBurst   int
	FloodChannel   string
	FloodReconnect bool
	MaxConnsPerIP  int
	MaxConns       int
	StormConns     int
	StormIPs       int
	StormHold      time.Duration
	Sample         time.Duration
	InProcess      bool
	AbuserSched    string
	GatewayArgs    string
	Rounds         int
	StallConns     int
}

// VariantList returns the variants to run, or the first knob out of
// range.
func (o *Opts) VariantList() ([]string, error) {
	var out []string
	for v := range strings.SplitSeq(o.Variants, ",") {
		switch v = strings.TrimSpace(v); v {
		case VariantFlood, VariantStorm, VariantStall:
			out = append(out, v)
		default:
			return nil, fmt.Errorf("--variants: %q is not flood, storm or stall", v)
		}
	}
	switch {
	case o.Clients < 1 || o.PingRate <= 0 || o.Phase <= 0 || o.Warmup < 0 || o.Sample <= 0 || o.Rounds < 1:
		return nil, errors.New("--clients, --ping-rate, --phase, --sample and --rounds must be positive")
	case o.CommandRate <= 0 || o.CommandBurst < 1:
		return nil, errors.New("--command-rate and --command-burst must be positive")
	case o.AbuserSched != SchedIdle && o.AbuserSched != SchedNormal:
		return nil, fmt.Errorf("--abuser-sched: %q is not %s or %s", o.AbuserSched, SchedIdle, SchedNormal)
	case o.StallConns < 3:
		return nil, errors.New("--stall-conns must be at least 3 (a third of each kind)")
	case o.MaxConnsPerIP < 1 || o.MaxConns < 1 || o.StormConns < 1 || o.StormIPs < 1 || o.StormIPs > 254 || o.StormHold <= 0:
		return nil, errors.New("--max-conns-per-ip, --max-conns, --storm-conns, --storm-hold must be positive, 1 ≤ --storm-ips ≤ 254")
	}
	return out, nil
}

// Config is one run of the scenario.
type Config struct {
	Opts
	// Servers starts the gateway, one per variant, with the variant's
	// limits as extra flags.
	Servers server.Launcher
	Bar     *progress.Bar
	// Proc reads the gateway's and the abuser's CPU time.
	Proc procfs.Root
	// Self is the wsbench executable, which runs "wsbench abuser".
	Self string
}
