package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestFailureLogOutageThroughHandler drives the handler: an outage is one
// "failing" line however its failures interleave with 200s that do not
// show the broker working, and a call that does show it ends the outage.
func TestFailureLogOutageThroughHandler(t *testing.T) {
	const (
		failA     = `{"channels":["a"],"data":1}`
		publishA  = `{"channel":"a","data":1}`
		publishB  = `{"channel":"b","data":1}`
		failing   = "backend calls failing"
		recovered = "succeed again"
	)
	type step struct {
		method, body string
		status       int
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string // each log line contains its entry, in order
	}{
		{"broadcasts whose channels all fail", []step{
			{"broadcast", failA, 200}, {"broadcast", failA, 200},
		}, []string{failing}},
		{"info between failing publishes", []step{
			{"publish", publishA, 503}, {"info", `{}`, 200}, {"publish", publishA, 503},
		}, []string{failing}},
		{"every method that does not reach the broker", []step{
			{"publish", publishA, 503}, {"info", `{}`, 200}, {"channels", `{}`, 200}, {"publish", publishA, 503},
		}, []string{failing}},
		{"broadcasts failing on one channel", []step{
			{"broadcast", `{"channels":["a","b"],"data":1}`, 200},
			{"broadcast", `{"channels":["b","a"],"data":2}`, 200},
		}, []string{failing}},
		{"a publish that succeeds ends the outage", []step{
			{"publish", publishA, 503}, {"publish", publishB, 200}, {"publish", publishA, 503},
		}, []string{failing, recovered, failing}},
		{"a broadcast that succeeds ends the outage", []step{
			{"broadcast", failA, 200}, {"broadcast", `{"channels":["b","c"],"data":1}`, 200},
		}, []string{failing, recovered}},
		{"disconnect and unsubscribe, relayed through the broker, end the outage", []step{
			{"publish", publishA, 503}, {"disconnect", `{"user":"u"}`, 200},
			{"publish", publishA, 503}, {"unsubscribe", `{"user":"u","channel":"b"}`, 200},
		}, []string{failing, recovered, failing, recovered}},
		{"reads that succeed end the outage", []step{
			{"publish", publishA, 503}, {"history", `{"channel":"b"}`, 200},
			{"publish", publishA, 503}, {"presence", `{"channel":"b"}`, 200},
			{"publish", publishA, 503}, {"presence_stats", `{"channel":"b"}`, 200},
		}, []string{failing, recovered, failing, recovered, failing, recovered}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			f := newFake()
			f.failOn["a"] = ErrUnavailable
			h := New(testKey, f, slog.New(slog.NewTextHandler(&buf, nil)))
			for _, s := range tc.steps {
				if r := call(h, s.method, s.body); r.status != s.status {
					t.Fatalf("%s %s: %d %s, want %d", s.method, s.body, r.status, r.body, s.status)
				}
			}
			checkLines(t, buf.String(), tc.want)
		})
	}
}

// checkLines checks that log has one line per want, each containing it.
func checkLines(t *testing.T, log string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if log == "" {
		lines = nil
	}
	ok := len(lines) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.Contains(lines[i], want[i])
	}
	if !ok {
		t.Fatalf("%d lines, want %d (%q):\n%s", len(lines), len(want), want, log)
	}
}

// TestFailureLogIgnoresCallerMistakes: a 4xx neither starts nor ends an
// outage, in a publish or in one channel of a broadcast.
func TestFailureLogIgnoresCallerMistakes(t *testing.T) {
	var buf bytes.Buffer
	f := newFake()
	f.failOn["a"] = ErrUnavailable
	f.failOn["k"] = ErrKeyReused
	h := New(testKey, f, slog.New(slog.NewTextHandler(&buf, nil)))
	for _, s := range []struct{ method, body string }{
		{"publish", `{"channel":"k","data":1}`},
		{"publish", `{"channel":"a","data":1}`},
		{"publish", `{"channel":"k","data":1}`},
		{"broadcast", `{"channels":["k"],"data":1}`},
		{"publish", `{"channel":"bad name","data":1}`},
	} {
		call(h, s.method, s.body)
	}
	checkLines(t, buf.String(), []string{"backend calls failing"})
	if r := call(h, "broadcast", `{"channels":["k","b"],"data":1}`); r.status != http.StatusOK {
		t.Fatalf("broadcast: %d %s", r.status, r.body)
	}
	checkLines(t, buf.String(), []string{"backend calls failing", "succeed again"})
}
