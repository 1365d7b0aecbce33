package gateway_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/api"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/memory"
	"github.com/wsgate/wsgate/gateway/presence"
)

// readFailure is the error the failing broker and store answer their
// reads (History, Members, Stats) with while it is set.
type readFailure struct {
	mu  sync.Mutex
	err error
}

func (r *readFailure) set(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func (r *readFailure) get() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

type failingHistory struct {
	broker.Broker
	fail *readFailure
}

func (b failingHistory) History(ch string, q broker.HistoryQuery, done func(broker.HistoryResult, error)) {
	if err := b.fail.get(); err != nil {
		done(broker.HistoryResult{}, err)
		return
	}
	b.Broker.History(ch, q, done)
}

type failingPresence struct {
	presence.Store
	fail *readFailure
}

func (s failingPresence) Members(ch string, done func([]presence.Member, error)) {
	if err := s.fail.get(); err != nil {
		done(nil, err)
		return
	}
	s.Store.Members(ch, done)
}

func (s failingPresence) Stats(ch string, done func(presence.Stats, error)) {
	if err := s.fail.get(); err != nil {
		done(presence.Stats{}, err)
		return
	}
	s.Store.Stats(ch, done)
}

// TestAPIReadsUnavailable: history, presence and presence_stats answer 503
// with Retry-After: 1 (README's status table) when the broker or presence
// store cannot answer now — down, closed at shutdown, queue full — and
// 500 only for a genuine failure.
func TestAPIReadsUnavailable(t *testing.T) {
	f := &readFailure{}
	srv := startServer(t, func(c *gateway.Config) {
		c.Broker = failingHistory{memory.New("n1"), f}
		c.Presence = failingPresence{presence.NewMemory(), f}
		def := c.DefaultNamespace()
		def.Presence, def.HistorySize = true, 10
		ns, err := gateway.NewNamespaces(def, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Namespaces = ns
	})
	hs := httptest.NewServer(api.New("k3y", srv.APIBackend(), slog.New(slog.DiscardHandler)))
	defer hs.Close()
	unavailable := []error{
		broker.Unavailable(errors.New("dial tcp: connection refused")),
		fmt.Errorf("redis broker: %w", broker.ErrOverloaded),
		presence.ErrClosed,
		presence.ErrOverloaded,
		fmt.Errorf("%w: wsgate_presence_members: EOF", presence.ErrUnavailable),
	}
	for _, method := range []string{"history", "presence", "presence_stats"} {
		for _, err := range unavailable {
			f.set(err)
			resp := apiPost(t, hs.URL, method, `{"channel":"c"}`)
			if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") != "1" {
				t.Errorf("%s, store failing with %q: %d %q %s, want 503 with Retry-After: 1",
					method, err, resp.status, resp.header.Get("Retry-After"), resp.body)
			}
		}
		f.set(errors.New("reply of 3 elements, want 2"))
		if resp := apiPost(t, hs.URL, method, `{"channel":"c"}`); resp.status != http.StatusInternalServerError ||
			resp.header.Get("Retry-After") != "" {
			t.Errorf("%s, a genuine failure: %d %q %s, want 500", method, resp.status, resp.header.Get("Retry-After"), resp.body)
		}
		f.set(nil)
		if resp := apiPost(t, hs.URL, method, `{"channel":"c"}`); resp.status != http.StatusOK {
			t.Errorf("%s, store working: %d %s", method, resp.status, resp.body)
		}
	}
}

type apiResponse struct {
	status int
	header http.Header
	body   string
}

// apiPost calls the server API at base with the key "k3y".
func apiPost(t *testing.T, base, method, body string) apiResponse {
	t.Helper()
	return apiPostKey(t, base, "k3y", method, body)
}

// apiPostKey is apiPost with another key.
func apiPostKey(t *testing.T, base, key, method, body string) apiResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/"+method, strings.NewReader(body))
	req.Header.Set("Authorization", "apikey "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apiResponse{resp.StatusCode, resp.Header, string(b)}
}
