package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/codec"
)

const testKey = "s3cret-key"

// fakeBackend records calls and answers from its fields.
type fakeBackend struct {
	mu        sync.Mutex
	published map[string][][]byte // channel → data published, in call order
	offsets   map[string]uint64
	failOn    map[string]error          // Publish to this channel fails
	keys      map[[2]string]keyedResult // (channel, key) → what it published
	attempts  map[string]int            // Publish calls per channel
	// gate, when set, makes Publish signal entered and wait for release,
	// so a test can hold a publish in flight.
	entered, release chan struct{}
	// delay, when set, makes Publish take that long (or until ctx ends).
	delay time.Duration

	lastCall []any // arguments of the last non-publish call
	err      error // returned by every non-publish call

	members  []Member
	history  []Publication
	channels []string
	info     map[string]any
}

type keyedResult struct {
	data string
	res  PublishResult
}

func newFake() *fakeBackend {
	return &fakeBackend{published: map[string][][]byte{}, offsets: map[string]uint64{}, failOn: map[string]error{},
		keys: map[[2]string]keyedResult{}, attempts: map[string]int{}}
}

// Publish claims key as the brokers do: a repeat of the same data is
// replayed, other data is ErrKeyReused.
func (f *fakeBackend) Publish(ctx context.Context, channel string, data []byte, key string) (PublishResult, error) {
	f.mu.Lock()
	f.attempts[channel]++
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- struct{}{}
		<-f.release
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return PublishResult{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failOn[channel]; err != nil {
		return PublishResult{}, err
	}
	if prev, ok := f.keys[[2]string{channel, key}]; ok && key != "" {
		if prev.data != string(data) {
			return PublishResult{}, ErrKeyReused
		}
		r := prev.res
		r.Replayed = true
		return r, nil
	}
	f.published[channel] = append(f.published[channel], data)
	f.offsets[channel]++
	res := PublishResult{Offset: f.offsets[channel], Epoch: "ep-" + channel}
	if key != "" {
		f.keys[[2]string{channel, key}] = keyedResult{string(data), res}
	}
	return res, nil
}

// calls is how many publications were made on channel.
func (f *fakeBackend) calls(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.published[channel])
}

func (f *fakeBackend) record(args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastCall = args
	return f.err
}

func (f *fakeBackend) Disconnect(_ context.Context, user, client string, code uint16, reason string) (int, error) {
	return 2, f.record("disconnect", user, client, code, reason)
}

func (f *fakeBackend) Unsubscribe(_ context.Context, user, client, channel string) (int, error) {
	return 1, f.record("unsubscribe", user, client, channel)
}

func (f *fakeBackend) Presence(_ context.Context, channel string) ([]Member, error) {
	return f.members, f.record("presence", channel)
}

func (f *fakeBackend) PresenceStats(_ context.Context, channel string) (int, int, error) {
	return 3, 2, f.record("presence_stats", channel)
}

func (f *fakeBackend) History(_ context.Context, channel string, since uint64, limit int, reverse bool) ([]Publication, uint64, string, error) {
	return f.history, 9, "ep", f.record("history", channel, since, limit, reverse)
}

func (f *fakeBackend) Channels(context.Context) ([]string, error) {
	return f.channels, f.record("channels")
}

func (f *fakeBackend) Info(context.Context) (map[string]any, error) {
	return f.info, f.record("info")
}

func (f *fakeBackend) ValidChannel(name string) bool { return codec.ValidChannel([]byte(name), 0) }

func (f *fakeBackend) last() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastCall
}

// result is one response.
type result struct {
	status int
	header http.Header
	body   string // without the trailing newline
}

// errorReason is the "error" of an error response, "" if there is none.
func (r result) errorReason() string {
	var e struct{ Error string }
	_ = json.Unmarshal([]byte(r.body), &e)
	return e.Error
}

// call POSTs body to /api/<method> with the right key.
func call(h http.Handler, method, body string) result {
	return send(h, http.MethodPost, "/api/"+method, "apikey "+testKey, body)
}

func send(h http.Handler, httpMethod, path, auth, body string) result {
	req := httptest.NewRequest(httpMethod, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return result{rec.Code, rec.Header(), strings.TrimSuffix(rec.Body.String(), "\n")}
}

// expect checks an exact status and body.
func expect(t *testing.T, r result, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("got %d %s\nwant %d %s", r.status, r.body, status, body)
	}
}

func newTest(t *testing.T) (*fakeBackend, http.Handler) {
	t.Helper()
	f := newFake()
	return f, New(testKey, f, nil)
}
