package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/pubsub"
)

// The fan-out tests run `wsbench pubsub` (a separate, uninstrumented
// process holding thousands of subscribers on one event loop) against the
// real wsgate binary, and assert on its verdict: every subscriber received
// every publication of its channel exactly once, per-publisher order held,
// offsets strictly increased, nothing leaked across channels.

// pubsubTimeout bounds one wsbench run; the test's own deadline is a
// little longer so a hung run still reports its output.
const pubsubTimeout = 50 * time.Second

// runPubsub runs wsbench pubsub against p and returns its verdict; the JSON
// line and the progress lines are logged.
func runPubsub(t *testing.T, p *gatewayProc, args ...string) pubsub.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pubsubTimeout+15*time.Second)
	defer cancel()
	args = append([]string{"pubsub", "--addrs", p.addr, "--timeout", pubsubTimeout.String()}, args...)
	cmd := exec.CommandContext(ctx, buildBinary(t, "wsbench"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("wsbench %s (%v):\n%s%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	var res pubsub.Result
	if jerr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); jerr != nil {
		t.Fatalf("wsbench pubsub: %v; no verdict: %v", err, jerr)
	}
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("wsbench pubsub: %v", err)
	}
	return res
}

// requireExactlyOnce fails t unless the verdict is clean and complete.
func requireExactlyOnce(t *testing.T, res pubsub.Result, subscribers int, publications uint64) {
	t.Helper()
	if !res.OK {
		t.Fatalf("fan-out check failed: %s", res.Reason)
	}
	if res.Subscribers != subscribers || res.Publications != publications ||
		res.ExpectedDeliveries != publications*uint64(subscribers)/uint64(res.Channels) ||
		res.Delivered != res.ExpectedDeliveries {
		t.Fatalf("subscribers %d (want %d), publications %d (want %d), delivered %d of %d",
			res.Subscribers, subscribers, res.Publications, publications, res.Delivered, res.ExpectedDeliveries)
	}
}

// TestFanoutExactlyOnce: 2,000 subscribers (100 of them on JSON) on one
// channel, 10,000 publications from 10 pipelining publishers.
func TestFanoutExactlyOnce(t *testing.T) {
	skipSlow(t)
	p := startGateway(t)
	res := runPubsub(t, p, "--channels", "1", "--subs-per-channel", "2000", "--json-subscribers", "100",
		"--publishers", "10", "--messages", "10000", "--size", "64", "--mode", "burst")
	requireExactlyOnce(t, res, 2000, 10000)
	if got := p.metric("wsgate_send_batches_total"); got == 0 {
		t.Error("no flush went out in an io_uring batch (--batch-sends is on by default)")
	}
}

// TestFanoutBatchSendsOff: with --batch-sends=false every socket gets its
// own write(2), nothing is batched, and the fan-out is as exact.
func TestFanoutBatchSendsOff(t *testing.T) {
	skipSlow(t)
	p := startGateway(t, "--batch-sends=false")
	res := runPubsub(t, p, "--channels", "1", "--subs-per-channel", "1000", "--json-subscribers", "100",
		"--publishers", "5", "--messages", "2000", "--size", "64", "--mode", "burst")
	requireExactlyOnce(t, res, 1000, 2000)
	if got := p.metric("wsgate_send_batches_total"); got != 0 {
		t.Errorf("wsgate_send_batches_total = %d with --batch-sends=false", got)
	}
	if got := p.metric("wsgate_writev_total"); got < 1000 {
		t.Errorf("wsgate_writev_total = %d, want at least one write per subscriber", got)
	}
}

// TestFanoutManyChannels: 500 channels × 20 subscribers; each of 10
// publishers publishes once on every channel, so every channel hears every
// publisher and no two channels' streams may mix.
func TestFanoutManyChannels(t *testing.T) {
	skipSlow(t)
	p := startGateway(t)
	res := runPubsub(t, p, "--channels", "500", "--subs-per-channel", "20", "--json-subscribers", "500",
		"--publishers", "10", "--messages", "5000", "--size", "64", "--mode", "burst")
	requireExactlyOnce(t, res, 10000, 5000)
	if res.CrossChannel != 0 {
		t.Fatalf("%d cross-channel deliveries", res.CrossChannel)
	}
}

// Slow-consumer run: 100 subscribers that do not read and 1,000 that do,
// a 10 MiB burst (10,240 × 1 KiB) on their channel.
const (
	slowNonReaders = 100
	slowReaders    = 1000
	slowMessages   = 10240
	slowSize       = 1024
	// maxQueueBytes is the gateway's default --max-queue-bytes.
	maxQueueBytes = 1 << 20
	// rssAllowance is what the server may use besides the non-readers'
	// queues (each may hold up to maxQueueBytes of frames; frames are
	// shared between subscribers, so in practice it is far less): the
	// process at start (~10 MiB measured: runtime, binary, the conn slab
	// sized by RLIMIT_NOFILE), 1,110 connections (~1 KiB each), 4 × 64 KiB
	// worker scratch, the hub's shard queue (≤ 4,096 publications ≈ 4 MiB
	// of frames per encoding), and the GC's headroom (GOGC=100 lets the
	// heap reach twice the live data). Measured peak: 26–30 MiB in all, so
	// 64 MiB leaves 2× room; a copy of each frame per subscriber instead
	// of one shared frame (1.1 MiB per publication here) would not fit.
	rssAllowance = 64 << 20
)

// TestSlowConsumers: the readers get every message; every non-reader is
// closed with 4008 (the code it finds once it reads again) and counted;
// the server's RSS stays within one queue limit per non-reader plus a
// constant throughout.
//
// --max-lag keeps the publishers within 256 publications of the slowest
// reader: wsgate acknowledges a publish when its hub queued it, so an
// unpaced burst can run a whole hub queue (4 MiB here) ahead of healthy
// readers, and on a loaded 2-core box some of those then cross the 1 MiB
// queue limit too — the test would measure the client's CPU share. Non-
// readers are not paced for: they fall behind without limit.
func TestSlowConsumers(t *testing.T) {
	skipSlow(t)
	p := startGateway(t)
	sampler := startRSSSampler(t, p.cmd.Process.Pid, 50*time.Millisecond)
	res := runPubsub(t, p, "--channels", "1", "--subs-per-channel", strconv.Itoa(slowReaders),
		"--non-readers", strconv.Itoa(slowNonReaders), "--publishers", "10", "--messages", strconv.Itoa(slowMessages),
		"--size", strconv.Itoa(slowSize), "--mode", "burst", "--max-lag", "256", "--resume-after", "500ms")
	peak, samples := sampler.stop()
	limit := int64(slowNonReaders*maxQueueBytes + rssAllowance)
	t.Logf("server VmRSS %.1f MiB before, peak %.1f MiB over %d samples (limit %.0f MiB)",
		float64(sampler.first)/(1<<20), float64(peak)/(1<<20), samples, float64(limit)/(1<<20))

	requireExactlyOnce(t, res, slowReaders, slowMessages)
	if got := p.metric("wsgate_send_batches_total"); got == 0 {
		t.Error("no flush went out in an io_uring batch: full sockets were not exercised in one")
	}
	if got := p.metric("wsgate_slow_consumers_total"); got != slowNonReaders {
		t.Errorf("wsgate_slow_consumers_total = %d, want %d", got, slowNonReaders)
	}
	if got := res.NonReaderCloses["4008"]; got != slowNonReaders {
		t.Errorf("non-readers found %v after resuming, want {4008:%d}", res.NonReaderCloses, slowNonReaders)
	}
	if samples == 0 || peak >= limit {
		t.Errorf("server VmRSS peak %d B over %d samples, limit %d B", peak, samples, limit)
	}
}

// rssSampler reads a process's VmRSS periodically.
type rssSampler struct {
	done    chan struct{}
	wg      sync.WaitGroup
	first   int64 // before the run
	peak    int64
	samples int
}

func startRSSSampler(t *testing.T, pid int, every time.Duration) *rssSampler {
	t.Helper()
	s := &rssSampler{done: make(chan struct{})}
	path := fmt.Sprintf("/proc/%d/status", pid)
	var err error
	if s.first, err = vmRSS(path); err != nil {
		t.Fatalf("read VmRSS: %v", err)
	}
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if rss, err := vmRSS(path); err == nil {
				s.peak = max(s.peak, rss)
				s.samples++
			}
			select {
			case <-tick.C:
			case <-s.done:
				return
			}
		}
	})
	return s
}

// stop ends sampling and returns the peak (bytes) and the sample count.
func (s *rssSampler) stop() (int64, int) {
	close(s.done)
	s.wg.Wait()
	return s.peak, s.samples
}

// vmRSS reads VmRSS (in bytes) from a /proc/<pid>/status file.
func vmRSS(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS line", path)
}
