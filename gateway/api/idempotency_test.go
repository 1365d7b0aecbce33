package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The brokers claim idempotency keys (tested in gateway/broker's
// conformance tests); these tests check what the API makes of their
// answers: the replay header, 409, per-channel broadcast results, and the
// outcome of failures.

func TestIdempotentPublishReplayed(t *testing.T) {
	f, h := newTest(t)
	body := `{"channel":"c","data":{"n":1},"idempotency_key":"k1"}`
	first := call(h, "publish", body)
	expect(t, first, 200, `{"offset":1,"epoch":"ep-c"}`)
	again := call(h, "publish", body)
	expect(t, again, 200, `{"offset":1,"epoch":"ep-c"}`)
	if f.calls("c") != 1 {
		t.Fatalf("published %d times", f.calls("c"))
	}
	if first.header.Get("Idempotent-Replayed") != "" || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("Idempotent-Replayed header wrong")
	}
	expect(t, call(h, "publish", `{"channel":"c","data":{"n":1},"idempotency_key":"k2"}`), 200, `{"offset":2,"epoch":"ep-c"}`)
	expect(t, call(h, "publish", `{"channel":"c","data":{"n":1}}`), 200, `{"offset":3,"epoch":"ep-c"}`)
}

func TestIdempotencyKeyReused(t *testing.T) {
	_, h := newTest(t)
	expect(t, call(h, "publish", `{"channel":"c","data":1,"idempotency_key":"k"}`), 200, `{"offset":1,"epoch":"ep-c"}`)
	r := call(h, "publish", `{"channel":"c","data":2,"idempotency_key":"k"}`)
	if r.status != 409 || r.errorReason() != ErrKeyReused.Error() || !strings.Contains(r.body, `"outcome":"not_published"`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// A broadcast retried with its key redoes only the channels that failed:
// the others are replayed by the broker.
func TestIdempotentBroadcast(t *testing.T) {
	f, h := newTest(t)
	f.failOn["b"] = fmt.Errorf("redis down: %w", ErrUnavailable)
	body := `{"channels":["a","b"],"data":"x","idempotency_key":"bk"}`
	expect(t, call(h, "broadcast", body), 200,
		`{"results":[{"channel":"a","offset":1,"epoch":"ep-a"},{"channel":"b","error":"redis down: unavailable","outcome":"not_published"}]}`)
	delete(f.failOn, "b")
	for range 2 {
		expect(t, call(h, "broadcast", body), 200,
			`{"results":[{"channel":"a","offset":1,"epoch":"ep-a"},{"channel":"b","offset":1,"epoch":"ep-b"}]}`)
	}
	if f.calls("a") != 1 || f.calls("b") != 1 {
		t.Fatalf("a published %d times, b %d", f.calls("a"), f.calls("b"))
	}
}

// TestPublishFailureOutcome: a failed publish is a 503 with Retry-After
// and says whether it may have been published.
func TestPublishFailureOutcome(t *testing.T) {
	for _, tc := range []struct {
		err     error
		outcome string
	}{
		{fmt.Errorf("redis: dial tcp: connection refused: %w", ErrUnavailable), "not_published"},
		{fmt.Errorf("redis publish: i/o timeout: %w", ErrOutcomeUnknown), "unknown"},
	} {
		f, h := newTest(t)
		f.failOn["c"] = tc.err
		r := call(h, "publish", `{"channel":"c","data":1,"idempotency_key":"k"}`)
		want := fmt.Sprintf(`{"error":%q,"outcome":%q}`, tc.err.Error(), tc.outcome)
		if r.status != 503 || r.header.Get("Retry-After") != "1" || r.body != want {
			t.Errorf("%v: %d %v %s, want 503 %s", tc.err, r.status, r.header, r.body, want)
		}
	}
}

// TestFailureLogOncePerOutage: an outage is logged when it starts, every
// report interval while it lasts, and when it ends — not per request.
func TestFailureLogOncePerOutage(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	fl := newFailureLog(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	for range 30 { // 30 s of failures, 100 per second
		for range 100 {
			fl.failed("publish", ErrUnavailable)
			now = now.Add(10 * time.Millisecond)
		}
	}
	fl.succeeded()
	fl.succeeded()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "backend calls failing") ||
		!strings.Contains(lines[3], "succeed again") || !strings.Contains(lines[3], "failed=3000") {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
}
