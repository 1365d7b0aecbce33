package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestBackoffWindow(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 3 * time.Second}
	for _, tc := range []struct {
		attempt int
		slow    bool
		want    time.Duration
	}{
		{0, false, 100 * time.Millisecond}, {1, false, 200 * time.Millisecond}, {4, false, 1600 * time.Millisecond},
		{5, false, 3 * time.Second}, {1000, false, 3 * time.Second},
		{0, true, 1600 * time.Millisecond}, {1, true, 3 * time.Second},
	} {
		if got := b.window(tc.attempt, tc.slow); got != tc.want {
			t.Errorf("window(%d, slow %v) = %v, want %v", tc.attempt, tc.slow, got, tc.want)
		}
	}
}

// Full jitter: delays cover the whole window evenly; a slow-down close
// waits at least half of it; Retry-After comes first.
func TestBackoffDelayIsJittered(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute}
	const n, bins = 20000, 10
	var hist [bins]int
	for range n {
		d := b.delay(2, verdict{}) // window 4 s
		if d < 0 || d > 4*time.Second {
			t.Fatalf("delay %v outside [0, 4s]", d)
		}
		hist[min(int(d*bins/(4*time.Second)), bins-1)]++
	}
	for i, c := range hist {
		// Binomial(20000, 0.1): σ ≈ 42; 5σ keeps this from ever flaking.
		if c < n/bins-210 || c > n/bins+210 {
			t.Fatalf("bin %d holds %d of %d: %v", i, c, n, hist)
		}
	}
	for range 1000 {
		if d := b.delay(0, verdict{slow: true}); d < 8*time.Second || d > 16*time.Second {
			t.Fatalf("slow delay %v outside [8s, 16s]", d)
		}
		if d := b.delay(0, verdict{retryAfter: 5 * time.Second}); d < 5*time.Second || d > 6*time.Second {
			t.Fatalf("Retry-After 5s delay %v", d)
		}
	}
}

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want verdict
	}{
		{&CloseError{Code: 1000}, verdict{}},
		{&CloseError{Code: 1001}, verdict{}},
		{&CloseError{Code: 1006}, verdict{}},
		{&CloseError{Code: 1011}, verdict{}},
		{&CloseError{Code: 4004}, verdict{}},
		{&CloseError{Code: 4008}, verdict{slow: true}},
		{&CloseError{Code: 4029}, verdict{slow: true}},
		{&CloseError{Code: 4499}, verdict{}},
		{&CloseError{Code: 4500}, verdict{stop: true}},
		{&CloseError{Code: 4999}, verdict{stop: true}},
		{&CloseError{Code: 1002}, verdict{stop: true}},
		{&CloseError{Code: 1003}, verdict{stop: true}},
		{&CloseError{Code: 1007}, verdict{stop: true}},
		{&CloseError{Code: 1009}, verdict{stop: true}},
		{&HandshakeError{StatusCode: 401}, verdict{stop: true}},
		{&HandshakeError{StatusCode: 403}, verdict{stop: true}},
		{&HandshakeError{StatusCode: 404}, verdict{stop: true}},
		{&HandshakeError{StatusCode: 408}, verdict{}},
		{&HandshakeError{StatusCode: 429, RetryAfter: time.Second}, verdict{retryAfter: time.Second}},
		{&HandshakeError{StatusCode: 503, RetryAfter: 2 * time.Second}, verdict{retryAfter: 2 * time.Second}},
		{&HandshakeError{StatusCode: 502}, verdict{}},
		{fmt.Errorf("%w: boom", ErrTokenSource), verdict{stop: true}},
		{fmt.Errorf("%w: bad frame", ErrProtocol), verdict{stop: true}},
		{ErrQueueFull, verdict{}},
		{errors.New("connection reset by peer"), verdict{}},
	} {
		if got := judge(tc.err); got != tc.want {
			t.Errorf("judge(%v) = %+v, want %+v", tc.err, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"soon", 0}, {"999999", time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(http.Header{"Retry-After": {tc.v}}, now); got != tc.want {
			t.Errorf("Retry-After %q = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil || o.Backoff.Min != DefaultMinBackoff || o.PingInterval != DefaultPingInterval || o.QueueSize != DefaultQueueSize {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	if _, err := (Options{Token: "a", TokenSource: func(context.Context) (string, error) { return "", nil }}).withDefaults(); err == nil {
		t.Fatal("Token and TokenSource together accepted")
	}
	if _, err := (Options{Backoff: Backoff{Min: time.Second, Max: time.Millisecond}}).withDefaults(); err == nil {
		t.Fatal("Max below Min accepted")
	}
	// One event of room never fits a publication and its possible epoch
	// notice: the client would wait for ever for the queue to drain.
	if _, err := (Options{QueueSize: 1}).withDefaults(); err == nil {
		t.Fatal("QueueSize 1 accepted")
	}
}
