package centrifugo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/harness/drive"
)

// BatchSize bounds the publish commands of one /api/batch request: the
// socket publisher's window (drive.Window), so neither publisher has more
// publishes in flight than the other.
const BatchSize = drive.Window

// apiTimeout bounds one API request.
const apiTimeout = 30 * time.Second

// Publisher publishes through Centrifugo's server HTTP API, the way a
// backend publishes to it: one message with /api/publish, several (a
// burst, a round over many channels) with /api/batch, processed in order.
type Publisher struct {
	base      string // http://host:port of the internal listener
	key       string
	client    *http.Client
	dataBytes int
	data      []byte
	seq       uint64
	ok, errs  atomic.Int64
	// unknown counts publishes of requests that got no answer (the
	// connection failed or timed out after the request was sent): they may
	// well have been published, so they are counted neither way, and the
	// deliveries tell.
	unknown atomic.Int64

	mu      sync.Mutex
	failure error // the first request that failed as a whole
}

var _ drive.Publisher = (*Publisher)(nil)

// NewPublisher publishes to the API on apiAddr (host:port) with key.
// dataBytes is the data size of every publication (at least
// MinDataBytes; 0 means that).
func NewPublisher(apiAddr, key string, dataBytes int) *Publisher {
	return &Publisher{
		base: "http://" + apiAddr,
		key:  key,
		// One kept-alive connection, as a backend's client would hold.
		client: &http.Client{Timeout: apiTimeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, IdleConnTimeout: time.Minute}},
		dataBytes: max(dataBytes, MinDataBytes),
	}
}

// apiError is an error in an API reply.
type apiError struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
}

// apiReply is the reply of /api/publish (Error, or a result) and of
// /api/batch (one entry per command, in order).
type apiReply struct {
	Error   *apiError `json:"error"`
	Replies []struct {
		Error *apiError `json:"error"`
	} `json:"replies"`
}

// Publish implements drive.Publisher: channels are harness channel names,
// mapped into Namespace.
func (p *Publisher) Publish(channels ...string) error {
	for len(channels) > 0 {
		n := min(len(channels), BatchSize)
		if err := p.request(channels[:n]); err != nil {
			p.fail(err)
			return err
		}
		channels = channels[n:]
	}
	return nil
}

// request publishes one message per channel in one request and counts
// the replies. A request refused as a whole (an HTTP error status) counts
// every publish in it as refused; one without an answer counts them as
// unknown.
func (p *Publisher) request(channels []string) error {
	var path string
	var body []byte
	if len(channels) == 1 {
		path, body = "/api/publish", p.command(nil, channels[0])
	} else {
		path, body = "/api/batch", []byte(`{"commands":[`)
		for i, ch := range channels {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, `{"publish":`...)
			body = p.command(body, ch)
			body = append(body, '}')
		}
		body = append(body, "]}"...)
	}
	r, known, err := p.post(path, body)
	if err != nil {
		if known {
			p.errs.Add(int64(len(channels)))
		} else {
			p.unknown.Add(int64(len(channels)))
		}
		return err
	}
	if len(channels) == 1 {
		if r.Error != nil {
			p.errs.Add(1)
		} else {
			p.ok.Add(1)
		}
		return nil
	}
	refused := 0
	for _, rep := range r.Replies {
		if rep.Error != nil {
			refused++
		}
	}
	p.ok.Add(int64(len(r.Replies) - refused))
	p.errs.Add(int64(refused))
	if missing := len(channels) - len(r.Replies); missing != 0 {
		p.errs.Add(int64(max(missing, 0)))
		return fmt.Errorf("centrifugo api: %d replies to %d publishes", len(r.Replies), len(channels))
	}
	return nil
}

// command appends one publish command's body: the next stamp, now.
func (p *Publisher) command(dst []byte, name string) []byte {
	if len(p.data) != p.dataBytes {
		p.data = NewData(p.dataBytes)
	}
	Stamp(p.data, p.seq, time.Now())
	p.seq++
	ch, _ := json.Marshal(Channel(name)) // a string always marshals
	dst = append(dst, `{"channel":`...)
	dst = append(dst, ch...)
	dst = append(dst, `,"data":`...)
	dst = append(dst, p.data...)
	return append(dst, '}')
}

// post sends one API request. On an error, known reports whether the
// publishes certainly did not happen (an error status, a connection that
// could not be made) rather than may have (a connection that broke after
// the request went out).
func (p *Publisher) post(path string, body []byte) (r *apiReply, known bool, err error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, p.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, true, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", p.key)
	resp, err := p.client.Do(req)
	if err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			return nil, true, fmt.Errorf("centrifugo api %s: %w", path, err)
		}
		return nil, false, fmt.Errorf("centrifugo api %s: no answer (the publishes' outcome is unknown): %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, false, fmt.Errorf("centrifugo api %s: reply cut short (the publishes' outcome is unknown): %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, true, fmt.Errorf("centrifugo api %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	r = &apiReply{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, true, fmt.Errorf("centrifugo api %s: reply: %w", path, err)
	}
	return r, true, nil
}

func (p *Publisher) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failure == nil {
		p.failure = err
	}
}

// Seq implements drive.Publisher.
func (p *Publisher) Seq() uint64 { return p.seq }

// Replies implements drive.Publisher.
func (p *Publisher) Replies() (ok, errs int64) { return p.ok.Load(), p.errs.Load() }

// Unknown returns the publishes whose requests got no answer.
func (p *Publisher) Unknown() int64 { return p.unknown.Load() }

// Failure implements drive.Publisher: the first request that failed as a
// whole, and how many publishes went without an answer.
func (p *Publisher) Failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failure != nil && p.unknown.Load() > 0 {
		return fmt.Errorf("%w (%d publishes without an answer)", p.failure, p.unknown.Load())
	}
	return p.failure
}

// Close implements drive.Publisher.
func (p *Publisher) Close() error {
	p.client.CloseIdleConnections()
	return nil
}
