package client_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/server"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
	"github.com/wsgate/wsgate/gateway/client"
)

// dialSubscribers connects n clients to url and subscribes each to
// channel, recording into tallies.
func dialSubscribers(t *testing.T, url, channel string, n int, opts client.Options) []*tally {
	t.Helper()
	tallies := make([]*tally, n)
	clients := make([]*client.Client, n)
	t.Cleanup(func() { closeAll(clients) })
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
			clients[i] = c
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
	const subscribers, channel = 200, "acc:feed"
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
	go func() { // a stream across the restart, until everyone is back
		defer close(published)
		p.run(ctx, 1_000_000, 2*time.Millisecond)
	}()
	waitFor(t, 20*time.Second, "mid-stream", func() bool {
		for _, ta := range tallies {
			if ta.count() < 40 {
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

	time.Sleep(200 * time.Millisecond)
	p.halt.Store(true)
	<-published
	whileDown := p.ackedBetween(stopAt, readyAt)
	t.Logf("%d publications acknowledged, %d of them while the subscribers' gateway was down", len(p.acked), whileDown)
	if redis && whileDown == 0 {
		t.Fatal("nothing was published while the gateway was down: the resume had nothing to recover")
	}
	// Everyone is back: a last few publications must reach all of them
	// live (on the memory broker, the ones published while a subscriber
	// was still away are below its new starting point).
	const tail = 10
	p.run(ctx, tail, 0)
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
	if s.Epoch != acked[len(acked)-1].Epoch {
		t.Fatalf("subscriber %d resumed in epoch %s, the last publications are in %s", i, s.Epoch, acked[len(acked)-1].Epoch)
	}
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

// TestReconnectSpreadAndFinalClose is issue 13's second acceptance test:
// 1,000 clients whose gateway disappears (SIGKILL) come back spread over
// their backoff window — no 10 % slice of it holds much more than 10 % of
// the first reconnect attempts — and all of them stop for good on a 45xx
// close from the server API's disconnect.
func TestReconnectSpreadAndFinalClose(t *testing.T) {
	const n, window, nslices = 1000, 2 * time.Second, 10
	// Independent uniform draws are never exactly even: with 1,000 of them
	// a slice holds 100 ± 9.5. 14 % is 4σ above the 10 % target, so the
	// test fails only on a real clustering (no jitter puts 100 % in one).
	const maxShare = 0.14
	const secret, apiKey = "acceptance-secret-of-at-least-32-bytes", "acceptance-key"
	apiAddr, err := server.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	g := startGW(t, "--jwt-secret", secret, "--api-listen", apiAddr, "--api-key", apiKey)
	opts := client.Options{Token: jwtFor(t, secret, "u", time.Now().Add(time.Hour)),
		Backoff: client.Backoff{Min: window, Max: window}}
	dialAt := time.Now()
	clients, tallies := dialMany(t, g.url(), n, opts)
	t.Logf("%d clients connected in %v", n, time.Since(dialAt).Round(time.Millisecond))

	killAt := time.Now()
	g.kill()
	var planned, actual, early []time.Duration
	waitFor(t, window+30*time.Second, "every client's first reconnect attempt", func() bool {
		planned, actual, early = planned[:0], actual[:0], early[:0]
		for _, ta := range tallies {
			lost, delay, attempt := ta.firstReconnect()
			if attempt.IsZero() {
				return false
			}
			planned = append(planned, delay)
			actual = append(actual, attempt.Sub(killAt))
			if e := lost.Add(delay).Sub(attempt); e > 0 {
				early = append(early, e)
			}
		}
		return true
	})
	// The policy: the delay each client drew when it saw the loss. Its
	// fullest 10 % slice of the window is the acceptance number.
	hist := make([]int, nslices)
	for _, d := range planned {
		if d < 0 || d > window {
			t.Fatalf("a drawn delay of %v is outside the %v window", d, window)
		}
		hist[min(int(d*nslices/window), nslices-1)]++
	}
	top := slices.Max(hist)
	t.Logf("first reconnect attempts per %v slice of the %v window: %v; fullest slice %.1f %% (limit %.0f %%)",
		window/nslices, window, hist, 100*float64(top)/n, 100*maxShare)
	if float64(top) > maxShare*n {
		t.Errorf("a slice holds %d of %d attempts: %v", top, n, hist)
	}
	// What the server side sees: when the attempts really started, from
	// the kill. Detection latency and, on a loaded machine, timer
	// lateness shift them (reported, not judged: a shared 2-core CI box can
	// be seconds late); what must never happen is an attempt before its
	// drawn delay.
	actualHist := make([]int, nslices)
	for _, d := range actual {
		actualHist[min(int(d*nslices/window), nslices-1)]++
	}
	t.Logf("actual attempts since the kill per slice (last one: and later): %v; p10 %v, p50 %v, p90 %v, last %v; "+
		"rank correlation with the drawn delays %.3f", actualHist,
		percentile(actual, 10).Round(time.Millisecond), percentile(actual, 50).Round(time.Millisecond),
		percentile(actual, 90).Round(time.Millisecond), percentile(actual, 100).Round(time.Millisecond), spearman(planned, actual))
	if len(early) > 0 {
		t.Errorf("%d clients tried again before their delay was over (by up to %v)", len(early), slices.Max(early))
	}

	// Back up: everyone returns; then a final close stops them all.
	g.start()
	waitFor(t, 4*window+20*time.Second, "every client reconnected", func() bool {
		for _, ta := range tallies {
			ta.mu.Lock()
			c := ta.connected
			ta.mu.Unlock()
			if c < 2 {
				return false
			}
		}
		return true
	})
	if body := apiCall(t, apiAddr, apiKey, "disconnect", `{"user":"u","code":4503,"reason":"banned"}`); strings.TrimSpace(body) != fmt.Sprintf(`{"disconnected":%d}`, n) {
		t.Fatalf("disconnect: %s", body)
	}
	for i, c := range clients {
		select {
		case <-c.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("client %d did not stop after 4503", i)
		}
		var ce *client.CloseError
		if err := c.Err(); !errors.As(err, &ce) || ce.Code != 4503 || ce.Reason != "banned" {
			t.Fatalf("client %d: Err() = %v, want 4503 banned", i, err)
		}
	}
	time.Sleep(window + window/2) // a reconnect would have come by now
	if open := g.metric("wsgate_conns_open"); open != 0 {
		t.Fatalf("%d connections are open after 4503, want 0", open)
	}
	for i, ta := range tallies {
		ta.mu.Lock()
		last := ta.states[len(ta.states)-1]
		ta.mu.Unlock()
		if last.Kind != client.StateClosed || last.Code != 4503 {
			t.Fatalf("client %d: last state %+v, want closed with 4503", i, last)
		}
	}
}

// dialMany connects n clients (no subscriptions) and records their states.
func dialMany(t *testing.T, url string, n int, opts client.Options) ([]*client.Client, []*tally) {
	t.Helper()
	clients := make([]*client.Client, n)
	tallies := make([]*tally, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range clients {
		tallies[i] = &tally{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			o := opts
			o.OnState = tallies[i].state
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, url, o)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	t.Cleanup(func() { closeAll(clients) })
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	return clients, tallies
}

// closeAll closes the clients in parallel (each waits for its close
// handshake).
func closeAll(clients []*client.Client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		if c != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Close()
			}()
		}
	}
	wg.Wait()
}

// spearman is the rank correlation of two samples (no ties expected).
func spearman(a, b []time.Duration) float64 {
	rank := func(xs []time.Duration) []float64 {
		idx := make([]int, len(xs))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(i, j int) int { return cmp.Compare(xs[i], xs[j]) })
		r := make([]float64, len(xs))
		for pos, i := range idx {
			r[i] = float64(pos)
		}
		return r
	}
	ra, rb := rank(a), rank(b)
	var d2 float64
	for i := range ra {
		d := ra[i] - rb[i]
		d2 += d * d
	}
	n := float64(len(a))
	return 1 - 6*d2/(n*(n*n-1))
}

// TestTokenRefresh is issue 13's sixth acceptance test: a token that
// expires while connected is renewed through the token source when the
// gateway asks ({"type":"refresh"}), on the same connection — no
// reconnect, no missed publication; a token source that fails ends the
// client with that error, once, instead of a reconnect loop.
func TestTokenRefresh(t *testing.T) {
	const secret = "acceptance-secret-of-at-least-32-bytes"
	g := startGW(t, "--jwt-secret", secret, "--refresh-grace", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shortToken := func() string { return jwtFor(t, secret, "u", time.Now().Add(time.Second)) } // lasts 1–2 s

	var calls atomic.Int32
	ta := &tally{}
	c, err := client.Dial(ctx, g.url(), client.Options{OnState: ta.state,
		TokenSource: func(context.Context) (string, error) { calls.Add(1); return shortToken(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "t:r", ta.handle); err != nil {
		t.Fatal(err)
	}
	var failing atomic.Int32
	fa := &tally{}
	f, err := client.Dial(ctx, g.url(), client.Options{OnState: fa.state,
		TokenSource: func(context.Context) (string, error) {
			if failing.Add(1) > 1 {
				return "", errors.New("refresh token revoked")
			}
			return shortToken(), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	pc, err := client.Dial(ctx, g.url(), client.Options{Token: jwtFor(t, secret, "pub", time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := &publisher{c: pc, channel: "t:r"}
	p.run(ctx, 50, 100*time.Millisecond) // 5 s: several token lifetimes

	waitFor(t, 10*time.Second, "every publication", func() bool { return ta.count() == len(p.acked) })
	ta.mu.Lock()
	for i, pub := range ta.pubs {
		if pub.Offset != p.acked[i].Offset {
			t.Fatalf("publication %d at offset %d, want %d", i, pub.Offset, p.acked[i].Offset)
		}
	}
	states := slices.Clone(ta.states)
	ta.mu.Unlock()
	for _, s := range states {
		if s.Kind == client.StateDisconnected || s.Kind == client.StateClosed {
			t.Fatalf("the refreshing client left its connection: %+v", s)
		}
	}
	if n := calls.Load(); n < 3 {
		t.Fatalf("token source called %d times in 5 s of 1–2 s tokens, want a refresh at every expiry", n)
	}
	if expired := g.metric("wsgate_token_expired_total"); expired != 0 {
		t.Fatalf("%d connections closed for an expired token", expired)
	}
	t.Logf("token source called %d times (1 handshake + refreshes), one connection throughout, %d publications received", calls.Load(), len(p.acked))

	select {
	case <-f.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client with a failing token source did not stop")
	}
	if err := f.Err(); !errors.Is(err, client.ErrTokenSource) || !strings.Contains(err.Error(), "refresh token revoked") {
		t.Fatalf("Err() = %v, want the token source's error", err)
	}
	time.Sleep(time.Second) // no reconnect loop
	if n := failing.Load(); n != 2 {
		t.Fatalf("the failing token source was called %d times, want 2 (handshake, refresh)", n)
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if last := fa.states[len(fa.states)-1]; last.Kind != client.StateClosed {
		t.Fatalf("last state %+v, want closed", last)
	}
	for _, s := range fa.states {
		if s.Kind == client.StateConnecting && s.Attempt > 0 {
			t.Fatalf("the failing client tried to reconnect: %+v", s)
		}
	}
}

// TestRedisHistoryLost: Redis restarts without persistence while the
// gateway and its subscriber stay up. The channel's history and offsets
// start again; the subscriber is told (EpochChanged) before the first
// publication of the new epoch, which it does not drop as a repeat of an
// old offset.
func TestRedisHistoryLost(t *testing.T) {
	wsgateBin(t)
	rs := redistest.StartStandalone(t)
	g := startGW(t, "--broker", "redis", "--redis-url", rs.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := client.Options{Backoff: client.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}}
	ta := &tally{}
	sc, err := client.Dial(ctx, g.url(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := sc.Subscribe(ctx, "e:c", ta.handle); err != nil {
		t.Fatal(err)
	}
	pc, err := client.Dial(ctx, g.url(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := &publisher{c: pc, channel: "e:c"}
	p.run(ctx, 3, 0)
	waitFor(t, 10*time.Second, "three publications", func() bool { return ta.count() == 3 })

	rs.Kill()
	rs.Restart()
	p.run(ctx, 2, 0) // retried until the broker is back
	if len(p.errs) > 0 {
		t.Fatalf("publish after the Redis restart: %v", p.errs)
	}
	waitFor(t, 20*time.Second, "the new epoch's publications", func() bool { return ta.count() == 5 })
	ta.mu.Lock()
	defer ta.mu.Unlock()
	old, fresh := ta.pubs[2], ta.pubs[3]
	if fresh.Epoch == old.Epoch || fresh.Offset != 1 {
		t.Fatalf("after the restart: %+v, before: %+v", fresh, old)
	}
	var changes []client.EpochChanged
	for _, n := range ta.notices {
		if e, ok := n.(client.EpochChanged); ok {
			changes = append(changes, e)
		}
	}
	if len(changes) != 1 || changes[0].Previous != old.Epoch || changes[0].Epoch != fresh.Epoch || changes[0].LastOffset != 3 {
		t.Fatalf("epoch notices %+v, want one from %s (after 3) to %s", changes, old.Epoch, fresh.Epoch)
	}
}
