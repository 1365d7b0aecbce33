package client_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/gateway/client"
)

// dialSubscribers connects n clients to url and subscribes each to
// channel, recording into tallies.
func dialSubscribers(t *testing.T, url, channel string, n int, opts client.Options) []*tally {
	t.Helper()
	tallies := make([]*tally, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range tallies {
		ta := &tally{}
		tallies[i] = ta
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			o := opts
			o.OnState = ta.state
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, url, o)
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { c.Close() })
			if _, err := c.Subscribe(ctx, channel, ta.handle); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("subscriber: %v", err)
	}
	return tallies
}

// TestRestartResume is issue 13's first acceptance test: 200 subscribers
// through the Go client, the gateway SIGKILLed (no close frame) or
// SIGTERMed (1001 drain) in the middle of a stream and restarted on the
// same address. On the memory broker history dies with the process: every
// subscriber must be told so explicitly (a resume answered "not
// recovered"). On Redis history survives — and publications keep coming
// through a second gateway while the first is down: every subscriber must
// receive every acknowledged publication exactly once and in order, with
// its resume recovered.
func TestRestartResume(t *testing.T) {
	for _, broker := range []string{"memory", "redis"} {
		for _, how := range []string{"SIGKILL", "SIGTERM"} {
			t.Run(broker+"/"+how, func(t *testing.T) { testRestartResume(t, broker, how) })
		}
	}
}

func testRestartResume(t *testing.T, broker, how string) {
	const subscribers, total, channel = 200, 400, "acc:feed"
	args := []string{"--history-size", "10000", "--drain-window", "300ms"}
	redis := broker == "redis"
	if redis {
		wsgateBin(t) // skip before starting Redis under -short
		rs := redistest.StartStandalone(t)
		args = append(args, "--broker", "redis", "--redis-url", rs.URL())
	}
	a := startGW(t, args...)
	pubGW := a
	if redis {
		pubGW = startGW(t, args...) // keeps publishing while a is down
	}
	opts := client.Options{Backoff: client.Backoff{Min: 100 * time.Millisecond, Max: time.Second}}
	tallies := dialSubscribers(t, a.url(), channel, subscribers, opts)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pc, err := client.Dial(ctx, pubGW.url(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := &publisher{c: pc, channel: channel}
	published := make(chan struct{})
	go func() {
		defer close(published)
		p.run(ctx, total, 4*time.Millisecond)
	}()
	waitFor(t, 20*time.Second, "mid-stream", func() bool {
		for _, ta := range tallies {
			if ta.count() < 50 {
				return false
			}
		}
		return true
	})

	stopAt := time.Now()
	if how == "SIGKILL" {
		a.kill()
	} else {
		a.term()
	}
	startAt := time.Now()
	a.start()
	readyAt := time.Now()
	var resume []time.Duration // from the new process's start
	waitFor(t, 30*time.Second, "every subscriber resubscribed to the new process", func() bool {
		resume = resume[:0]
		for _, ta := range tallies {
			at, _ := ta.resumedAfter(startAt)
			if at.IsZero() {
				return false
			}
			resume = append(resume, at.Sub(startAt))
		}
		return true
	})
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("%s/%s: stop took %v, the new process answered after %v; %d clients resubscribed (reply handled) "+
		"p50 %v, p90 %v, all %v after its start (backoff %v..%v)", broker, how, ms(startAt.Sub(stopAt)),
		ms(readyAt.Sub(startAt)), subscribers, ms(percentile(resume, 50)), ms(percentile(resume, 90)),
		ms(percentile(resume, 100)), opts.Backoff.Min, opts.Backoff.Max)

	<-published
	if len(p.errs) > 0 {
		t.Fatalf("%d publishes failed, first: %v", len(p.errs), p.errs[0])
	}
	last := p.acked[len(p.acked)-1]
	waitFor(t, 20*time.Second, "the last publication everywhere", func() bool {
		for _, ta := range tallies {
			ta.mu.Lock()
			n := len(ta.pubs)
			done := n > 0 && ta.pubs[n-1].Offset == last.Offset && ta.pubs[n-1].Epoch == last.Epoch
			ta.mu.Unlock()
			if !done {
				return false
			}
		}
		return true
	})
	for i, ta := range tallies {
		ta.mu.Lock()
		if redis {
			checkExactlyOnce(t, i, ta, p.acked, startAt)
		} else {
			checkToldOfLoss(t, i, ta, p.acked, startAt)
		}
		ta.mu.Unlock()
	}
}

// checkExactlyOnce: the subscriber got exactly the acknowledged
// publications, in order, and its resume after the restart recovered.
func checkExactlyOnce(t *testing.T, i int, ta *tally, acked []client.Publication, restart time.Time) {
	t.Helper()
	if len(ta.pubs) != len(acked) {
		t.Fatalf("subscriber %d: %d publications, %d acknowledged", i, len(ta.pubs), len(acked))
	}
	for k, want := range acked {
		got := ta.pubs[k]
		if got.Offset != want.Offset || got.Epoch != want.Epoch || string(got.Data) != string(want.Data) {
			t.Fatalf("subscriber %d: publication %d is %d/%s %q, want %d/%s %q", i, k,
				got.Offset, got.Epoch, got.Data, want.Offset, want.Epoch, want.Data)
		}
	}
	if len(ta.notices) > 0 {
		t.Fatalf("subscriber %d: notices %v on a lossless restart", i, ta.notices)
	}
	for k, s := range ta.subs {
		if s.Resumed && !s.Recovered {
			t.Fatalf("subscriber %d: resume %d not recovered: %q", i, k, s.Reason)
		}
	}
	if at, s := ta.resumedAfterLocked(restart); at.IsZero() || !s.Recovered {
		t.Fatalf("subscriber %d: no recovered resume after the restart", i)
	}
}

// checkToldOfLoss: history died with the process, and the subscriber was
// told so explicitly; what it received is duplicate-free and ordered per
// epoch, and after its resubscription it got every acknowledged
// publication of the new epoch.
func checkToldOfLoss(t *testing.T, i int, ta *tally, acked []client.Publication, restart time.Time) {
	t.Helper()
	at, s := ta.resumedAfterLocked(restart)
	if at.IsZero() || !s.Lost() || s.Reason != "epoch changed" {
		t.Fatalf("subscriber %d: resume after the restart %+v, want not recovered (epoch changed)", i, s)
	}
	for k := 1; k < len(ta.pubs); k++ {
		prev, cur := ta.pubs[k-1], ta.pubs[k]
		if cur.Epoch == prev.Epoch && cur.Offset <= prev.Offset {
			t.Fatalf("subscriber %d: offset %d after %d in epoch %s", i, cur.Offset, prev.Offset, cur.Epoch)
		}
	}
	var want, got []string
	for _, a := range acked {
		if a.Epoch == s.Epoch && a.Offset > s.Offset {
			want = append(want, fmt.Sprintf("%d:%s", a.Offset, a.Data))
		}
	}
	for _, p := range ta.pubs {
		if p.Epoch == s.Epoch {
			got = append(got, fmt.Sprintf("%d:%s", p.Offset, p.Data))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("subscriber %d: new epoch after offset %d:\n got  %v\n want %v", i, s.Offset, got, want)
	}
}
