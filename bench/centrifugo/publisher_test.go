package centrifugo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeAPI answers /api/publish and /api/batch the way Centrifugo does and
// records every publication: refused channels get error 102.
type fakeAPI struct {
	mu       sync.Mutex
	key      string
	refuse   string // channel to refuse
	status   int    // non-zero: answer every request with it
	requests []string
	pubs     []publication
}

type publication struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.URL.Path)
	if f.status != 0 {
		http.Error(w, "down", f.status)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("X-API-Key") != f.key {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	reply := func(p publication) string {
		f.pubs = append(f.pubs, p)
		if p.Channel == f.refuse {
			return `{"error":{"code":102,"message":"unknown channel"}}`
		}
		return `{"result":{}}`
	}
	switch r.URL.Path {
	case "/api/publish":
		var p publication
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, reply(p))
	case "/api/batch":
		var b struct {
			Commands []struct {
				Publish publication `json:"publish"`
			} `json:"commands"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var out []string
		for _, c := range b.Commands {
			out = append(out, strings.Replace(reply(c.Publish), `"result"`, `"publish"`, 1))
		}
		fmt.Fprintf(w, `{"replies":[%s]}`, strings.Join(out, ","))
	default:
		http.NotFound(w, r)
	}
}

func TestPublisherBatchesAndStamps(t *testing.T) {
	api := &fakeAPI{key: "k", refuse: Channel("refused")}
	srv := httptest.NewServer(api)
	defer srv.Close()
	p := NewPublisher(strings.TrimPrefix(srv.URL, "http://"), "k", 0)
	defer p.Close()

	if err := p.Publish("one"); err != nil {
		t.Fatal(err)
	}
	burst := make([]string, 2*BatchSize+3) // three requests: 128, 128, 3
	for i := range burst {
		burst[i] = fmt.Sprintf("ch.%d", i%7)
	}
	burst[5] = "refused"
	if err := p.Publish(burst...); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/api/publish", "/api/batch", "/api/batch", "/api/batch"}; strings.Join(api.requests, " ") != strings.Join(want, " ") {
		t.Fatalf("requests %v, want %v", api.requests, want)
	}
	ok, errs := p.Replies()
	if n := int64(1 + len(burst)); ok != n-1 || errs != 1 || p.Seq() != uint64(n) {
		t.Fatalf("replies %d ok %d refused, seq %d", ok, errs, p.Seq())
	}
	for i, pub := range api.pubs {
		want := "one"
		if i > 0 {
			want = burst[i-1]
		}
		seq, _, stamped := ParseStamp(pub.Data)
		if pub.Channel != Channel(want) || !stamped || seq != uint64(i) || len(pub.Data) != MinDataBytes {
			t.Fatalf("publication %d: %s %s (stamp %d %v)", i, pub.Channel, pub.Data, seq, stamped)
		}
	}
	if p.Failure() != nil {
		t.Fatal(p.Failure())
	}
}

func TestPublisherPayloadSize(t *testing.T) {
	api := &fakeAPI{key: "k"}
	srv := httptest.NewServer(api)
	defer srv.Close()
	p := NewPublisher(strings.TrimPrefix(srv.URL, "http://"), "k", 16384)
	if err := p.Publish("slow"); err != nil {
		t.Fatal(err)
	}
	if len(api.pubs) != 1 || len(api.pubs[0].Data) != 16384 {
		t.Fatalf("publications %d", len(api.pubs))
	}
}

// TestPublisherFailure: a request that fails as a whole counts all its
// publishes as refused and is the publisher's failure.
func TestPublisherFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		api  *fakeAPI
		key  string
	}{
		{"server error", &fakeAPI{key: "k", status: http.StatusInternalServerError}, "k"},
		{"wrong key", &fakeAPI{key: "k"}, "other"},
	} {
		srv := httptest.NewServer(c.api)
		p := NewPublisher(strings.TrimPrefix(srv.URL, "http://"), c.key, 0)
		err := p.Publish("a", "b", "c")
		if ok, errs := p.Replies(); err == nil || ok != 0 || errs != 3 || p.Failure() == nil {
			t.Errorf("%s: err %v, replies %d/%d, failure %v", c.name, err, ok, errs, p.Failure())
		}
		srv.Close()
	}
	// Nobody listening: certainly not published.
	p := NewPublisher("127.0.0.1:1", "k", 0)
	if err := p.Publish("a"); err == nil || p.Failure() == nil || p.Unknown() != 0 {
		t.Fatalf("publish to a closed port: %v, unknown %d", err, p.Unknown())
	}
	if _, errs := p.Replies(); errs != 1 {
		t.Fatalf("refused %d", errs)
	}
}

// TestPublisherNoAnswer: a server that takes the request and drops the
// connection (Centrifugo's 10 s write timeout on a starved API handler)
// may have published: those publishes count neither as accepted nor as
// refused.
func TestPublisherNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	p := NewPublisher(strings.TrimPrefix(srv.URL, "http://"), "k", 0)
	err := p.Publish("a", "b", "c")
	ok, errs := p.Replies()
	if err == nil || ok != 0 || errs != 0 || p.Unknown() != 3 || p.Seq() != 3 {
		t.Fatalf("err %v, %d ok, %d refused, %d unknown", err, ok, errs, p.Unknown())
	}
	if f := p.Failure(); f == nil || !strings.Contains(f.Error(), "3 publishes without an answer") {
		t.Fatalf("failure %v", f)
	}
}
