package pubsub

import (
	"context"
	"fmt"
	"math"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/loadclient"
)

// Waiting for deliveries: how often progress is checked, and how long to
// keep listening after everything arrived, so late duplicates are still
// counted.
const (
	pollEvery  = 10 * time.Millisecond
	settleTime = 100 * time.Millisecond
)

// fdReserve is what the process needs besides its connections: epoll
// instances, stdio, the runtime.
const fdReserve = 64

// Run executes one check against running gateways. The error is only for
// a Config that cannot run; everything that goes wrong during the run is
// in the Result (OK false, Reason).
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	if err := checkFdBudget(cfg.Conns()); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := newRun(cfg)
	defer r.closeAll()
	r.execute(ctx)
	return r.res, nil
}

// checkFdBudget fails early when the connections cannot fit under the
// open-files limit, instead of halfway through dialing.
func checkFdBudget(conns int) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if uint64(conns+fdReserve) > lim.Cur {
		return fmt.Errorf("%d connections need %d open files, the limit is %d", conns, conns+fdReserve, lim.Cur)
	}
	return nil
}

// run is one execution's state.
type run struct {
	cfg        Config
	sh         *shared
	subs       []*subscriber
	pubs       []*publisher
	subPools   []subPool
	pubPools   []*loadclient.Pool
	nonReaders []*nonReader
	pace       *pacer  // nil without MaxLag
	expected   []tally // accepted publications by channel
	res        Result
}

func newRun(cfg Config) *run {
	names := make([][]byte, cfg.Channels)
	for i := range names {
		names[i] = []byte(ChannelName(i))
	}
	n := cfg.Subscribers()
	sh := &shared{size: cfg.Size, publishers: cfg.Publishers, names: names, subscribes: newCountdown(n)}
	r := &run{cfg: cfg, sh: sh, subs: make([]*subscriber, n), pace: newPacer(cfg.MaxLag, cfg.Channels)}
	for i := range r.subs {
		r.subs[i] = newSubscriber(i, i%cfg.Channels, isJSON(i, n, cfg.JSONSubscribers), sh)
	}
	r.res = Result{Mode: cfg.Mode, Channels: cfg.Channels, Subscribers: n, JSONSubscribers: cfg.JSONSubscribers,
		Publishers: cfg.Publishers, Size: cfg.Size, MaxLag: cfg.MaxLag, NonReaderCloses: map[string]int{}}
	return r
}

// isJSON spreads j JSON subscribers evenly over n: exactly j indexes i in
// [0, n) have i·j mod n < j.
func isJSON(i, n, j int) bool { return j > 0 && (i*j)%n < j }

// execute runs the phases; a phase that fails ends the run with a reason.
func (r *run) execute(ctx context.Context) {
	log := r.cfg.Log
	start := time.Now()
	if err := r.connect(ctx); err != nil {
		r.sh.problems.add(err.Error())
		r.finish()
		return
	}
	r.res.SetupS = seconds(time.Since(start))
	log.Info("subscribed", "subscribers", len(r.subs), "non_readers", len(r.nonReaders), "took", time.Since(start).Round(time.Millisecond))

	pubStart := time.Now()
	r.publish(ctx)
	log.Info("published", "accepted", r.res.Publications, "retries", r.res.Retries, "took", time.Since(pubStart).Round(time.Millisecond))
	closes := r.resumeNonReaders(ctx)
	done := r.waitDeliveries(ctx)
	r.res.ElapsedS = seconds(done.Sub(pubStart))
	log.Info("deliveries done", "took", done.Sub(pubStart).Round(time.Millisecond))
	r.settle(ctx)
	r.closeSubscribers() // no callback runs after this: their state is final
	r.verify()
	r.res.NonReaderCloses = <-closes
	r.finish()
}

func (r *run) finish() {
	first, n := r.sh.problems.snapshot()
	r.res.Latency = r.sh.hist.summary()
	if r.res.ElapsedS > 0 {
		r.res.DeliveredPerS = math.Round(float64(r.res.Delivered) / r.res.ElapsedS)
	}
	r.res.finish(first, n)
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }
