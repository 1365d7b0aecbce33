package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Three kinds of publisher run during the scenario, each at a steady rate:
// clients publishing through the balancer, a backend calling the HTTP API
// of one instance (another one on failure, with the same idempotency key),
// and a backend calling Redis directly with the documented FCALL. Every
// publication carries {"id": "<source>-<n>"} so a subscriber can tell
// which one it got.

// rates, per second, of each kind (modest: the test client runs under
// -race on a shared 2-core machine).
const (
	clientRate = 30
	apiRate    = 10
	redisRate  = 10
)

// publishers runs the publishing goroutines until stop.
type publishers struct {
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeRedis func()
}

func startPublishers(l *ledger, clients []appClient, channelsOf func(int) []string, n network, redisAddr string, channels []string) (*publishers, error) {
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}, DisableCache: true})
	if err != nil {
		return nil, fmt.Errorf("redis client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &publishers{cancel: cancel}
	p.every(ctx, clientRate, func(seq int) {
		k := seq % len(clients)
		ch := channelsOf(k)[0]
		id := "c" + strconv.Itoa(k) + "-" + strconv.Itoa(seq)
		clients[k].Publish(ch, idData(id), id, l.begin("client", ch, id))
	})
	api := &apiPublisher{n: n, http: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	p.every(ctx, apiRate, func(seq int) {
		ch := channels[seq%len(channels)]
		id := "api-" + strconv.Itoa(seq)
		api.publish(ctx, seq, ch, id, l.begin("api", ch, id))
	})
	p.every(ctx, redisRate, func(seq int) {
		ch := channels[(seq*7)%len(channels)]
		id := "redis-" + strconv.Itoa(seq)
		fcallPublish(ctx, rc, ch, id, l.begin("redis", ch, id))
	})
	p.closeRedis = rc.Close
	return p, nil
}

func idData(id string) []byte { return []byte(`{"id":"` + id + `"}`) }

// every calls f(seq) rate times a second on one goroutine until ctx ends.
func (p *publishers) every(ctx context.Context, rate int, f func(seq int)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f(seq)
			}
		}
	}()
}

// stop ends every publisher and waits for them.
func (p *publishers) stop() {
	p.cancel()
	p.wg.Wait()
	p.closeRedis() // after the last FCALL
}

// apiPublisher publishes through the server API (README, "Server API").
type apiPublisher struct {
	n    network
	http *http.Client
}

// publish tries instance seq%3, then the others, with one idempotency key:
// a retry after an unknown outcome must not publish twice.
func (a *apiPublisher) publish(ctx context.Context, seq int, ch, id string, done func(pubOutcome)) {
	body := mustJSON(map[string]any{"channel": ch, "data": json.RawMessage(idData(id)), "idempotency_key": id})
	var last string
	for try := range instances {
		addr := a.n.apiAddr((seq + try) % instances)
		o, err := a.post(ctx, addr, body)
		if err == nil {
			done(o)
			return
		}
		last = err.Error()
		if ctx.Err() != nil {
			break
		}
	}
	done(pubOutcome{err: last})
}

func (a *apiPublisher) post(ctx context.Context, addr string, body []byte) (pubOutcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return pubOutcome{}, err
	}
	req.Header.Set("Authorization", "apikey "+apiKey)
	resp, err := a.http.Do(req)
	if err != nil {
		return pubOutcome{}, fmt.Errorf("connection: %w", errKind(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return pubOutcome{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var r struct {
		Offset uint64 `json:"offset"`
		Epoch  string `json:"epoch"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Offset == 0 {
		return pubOutcome{}, fmt.Errorf("bad response %q", b)
	}
	return pubOutcome{acked: true, offset: r.Offset, epoch: r.Epoch, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, nil
}

// errKind drops addresses from connection errors so they count together.
func errKind(err error) error {
	var t interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("cut short by the end of the test")
	case errors.As(err, &t) && t.Timeout():
		return errors.New("timeout")
	}
	return errors.New("failed")
}

// fcallPublish is the README's "Publishing from a backend" recipe with an
// idempotency key (the third key and a tenth argument), retried with the
// same key after an error: a retry must not publish twice.
func fcallPublish(ctx context.Context, client rueidis.Client, ch, id string, done func(pubOutcome)) {
	tag := fmt.Sprintf("wsgate:{%d}:", crc32.ChecksumIEEE([]byte(ch))%64)
	cmd := client.B().Fcall().Function("wsgate_publish").Numkeys(3).Key(tag+"m:"+ch, tag+"h:"+ch, tag+"i:"+ch+"|"+id).
		Arg(tag+"c:"+ch, ch, string(idData(id)), "e2e-backend", "", "86400000", "PUBLISH", "100", "300000", "300000").Build()
	var last string
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		arr, err := client.Do(cctx, cmd).ToArray()
		cancel()
		if err != nil || len(arr) < 2 {
			last = fmt.Sprintf("FCALL: %v", err)
			continue
		}
		off, err1 := arr[0].AsInt64()
		epoch, err2 := arr[1].ToString()
		if err1 != nil || err2 != nil || off <= 0 {
			last = fmt.Sprintf("FCALL reply %v", arr)
			continue
		}
		done(pubOutcome{acked: true, offset: uint64(off), epoch: epoch, replayed: len(arr) > 2})
		return
	}
	done(pubOutcome{err: last})
}
