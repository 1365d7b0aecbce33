package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/bench/harness/wait"
	"github.com/wsgate/wsgate/bench/loadclient"
)

// churnOpts are the churn scenario's flags.
type churnOpts struct {
	conns            int
	rounds           int
	pause            time.Duration
	handshakeTimeout time.Duration
}

func (o *churnOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.conns, "conns", 19000, "clients dialing at once in each round")
	fs.IntVar(&o.rounds, "rounds", 3, "storms: all dial, all close, repeat")
	fs.DurationVar(&o.pause, "pause", 500*time.Millisecond, "pause after the server has released a round's connections")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", 15*time.Second, "client-side connect+upgrade deadline")
}

// churnCmd measures connect/disconnect storms.
func churnCmd(e env, args []string) int {
	fs := flag.NewFlagSet("churn", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c commonFlags
	var o churnOpts
	c.register(fs)
	o.register(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if o.conns < 1 || o.rounds < 1 {
		fmt.Fprintln(e.stderr, "wsbench churn: --conns and --rounds must be positive")
		return 2
	}
	b, err := newBench(e, "churn", args, c)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench churn:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	for _, d := range b.designs {
		if ctx.Err() == nil {
			b.runChurn(ctx, d, o)
		}
	}
	return b.finish()
}

// runChurn storms one server: every client dials at once (no bound on
// dials in flight), all close, and again.
func (b *bench) runChurn(ctx context.Context, design string, o churnOpts) {
	p, err := b.startServer(ctx, design)
	if err != nil {
		return
	}
	defer b.stopServer(p)
	baseFDs, err := b.proc.CountFDs(p.Pid())
	if err != nil {
		b.run.Problem("churn %s: %v", design, err)
		return
	}
	c := &results.Churn{Conns: o.conns}
	b.run.Design(design).Churn = c
	for r := range o.rounds {
		if ctx.Err() != nil {
			return
		}
		b.bar.Phase(fmt.Sprintf("churn %s: round %d/%d, %d clients at once", design, r+1, o.rounds, o.conns), o.conns)
		round, err := b.storm(ctx, p, baseFDs, o)
		if err != nil {
			b.run.Problem("churn %s: round %d: %v", design, r+1, err)
			return
		}
		c.Rounds = append(c.Rounds, round)
		c.Errors += round.Failed
		c.ListenOverflows += round.ListenOverflows
		if round.Failed > 0 {
			b.run.Problem("churn %s: round %d: %d of %d dials failed: %s", design, r+1, round.Failed, o.conns, round.FirstError)
		}
		// The next storm starts from an empty server: wait until its fds
		// are back to where they were.
		if !b.waitFDs(ctx, p, baseFDs, 30*time.Second) {
			b.run.Problem("churn %s: round %d: the server still holds connections 30 s after the clients closed", design, r+1)
			return
		}
		wait.Sleep(ctx, o.pause)
	}
	var sum float64
	for _, r := range c.Rounds {
		sum += r.ConnPerSec
	}
	if len(c.Rounds) > 0 {
		c.AcceptedPerSec = float64(int64(sum / float64(len(c.Rounds))))
	}
	if p.Exited() {
		b.run.Problem("churn %s: %v", design, p.ExitError())
	}
}

// storm runs one round and closes its connections.
func (b *bench) storm(ctx context.Context, p *server.Process, baseFDs int, o churnOpts) (results.ChurnRound, error) {
	ls0, err := b.proc.ReadListenStats()
	if err != nil {
		return results.ChurnRound{}, err
	}
	stopWatch := b.watchFDs(p, baseFDs)
	pool, err := loadclient.Dial(ctx, loadclient.Config{Addr: p.Addr, Path: dialect(p.Name).Path(), Conns: o.conns,
		DialsInFlight: 0, HandshakeTimeout: o.handshakeTimeout})
	stopWatch()
	if err != nil {
		return results.ChurnRound{}, err
	}
	ls1, err := b.proc.ReadListenStats()
	st := pool.Stats()
	_ = pool.Close()
	if err != nil {
		return results.ChurnRound{}, err
	}
	s := st.Summary()
	return results.ChurnRound{
		Connected: st.Connected, Failed: st.Failed, FirstError: st.FirstError,
		Seconds: s.DialSeconds, ConnPerSec: s.ConnectRate,
		HandshakeMs:     results.Percentiles{P50: s.HandshakeP50Ms, P90: s.HandshakeP90Ms, P99: s.HandshakeP99Ms, Max: s.HandshakeMaxMs},
		ListenOverflows: ls1.Overflows - ls0.Overflows,
		ListenDrops:     ls1.Drops - ls0.Drops,
	}, nil
}

// watchFDs shows the server's connection count (its fds above baseFDs) on
// the progress bar until the returned function is called.
func (b *bench) watchFDs(p *server.Process, baseFDs int) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if fds, err := b.proc.CountFDs(p.Pid()); err == nil {
					b.bar.Set(fds - baseFDs)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// waitFDs waits until the server holds at most a few fds more than
// baseFDs.
func (b *bench) waitFDs(ctx context.Context, p *server.Process, baseFDs int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if fds, err := b.proc.CountFDs(p.Pid()); err != nil || fds <= baseFDs+4 {
			return err == nil
		}
		wait.Sleep(ctx, 50*time.Millisecond)
	}
	return false
}
