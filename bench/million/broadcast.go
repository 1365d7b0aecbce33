package million

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
	"github.com/wsgate/wsgate/bench/harness/results"
	"github.com/wsgate/wsgate/bench/harness/wire"
)

// Waiting for a broadcast to arrive everywhere: give up when no delivery
// came for broadcastStall, or after broadcastTimeout in all.
const (
	broadcastStall   = 15 * time.Second
	broadcastTimeout = 3 * time.Minute
	broadcastPoll    = 100 * time.Millisecond
	cdfPoints        = 200
)

// broadcasts publishes one message to the channel every connection is
// subscribed to, then a burst, and measures both.
func (r *runner) broadcasts(ctx context.Context, f *fleet, m *results.Million) {
	pub := &apiPublisher{addr: f.apiAddr, key: f.apiKey, channel: r.cfg.Channel,
		client: &http.Client{Timeout: 30 * time.Second}, data: wire.NewData(wire.DataBytes(r.cfg.Channel))}
	one := r.broadcast(ctx, f, pub, "one", []uint64{0})
	m.Broadcasts = append(m.Broadcasts, one)
	seqs := make([]uint64, r.cfg.Burst)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	if ctx.Err() == nil {
		m.Broadcasts = append(m.Broadcasts, r.broadcast(ctx, f, pub, "burst", seqs))
	}
}

// broadcast publishes the messages seqs back to back and waits until every
// subscribed connection has each of them (or deliveries stall).
func (r *runner) broadcast(ctx context.Context, f *fleet, pub *apiPublisher, name string, seqs []uint64) results.MillionBroadcast {
	r.cfg.Bar.Phase(fmt.Sprintf("million: broadcast %s (%d message(s))", name, len(seqs)), 0)
	serverPids, clientPids := f.pids()
	// Every client's state from after this moment: who is subscribed now
	// is who must get the broadcast.
	tot0 := f.fresh(time.Now(), 3*DefaultReportEvery)
	b := results.MillionBroadcast{Name: name, Messages: len(seqs), Conns: tot0.Subscribed - tot0.Closed}
	server0, client0, redis0 := r.probe.cpu(serverPids), r.probe.cpu(clientPids), r.probe.cpu(r.redisPids())
	first := time.Now()
	var sent []uint64
	for _, seq := range seqs {
		if err := pub.publish(ctx, seq); err != nil {
			b.PublishErrors++
			if b.FirstPublishError == "" {
				b.FirstPublishError = err.Error()
			}
			continue
		}
		sent = append(sent, seq)
	}
	b.Published = len(sent)
	b.PublishMs = float64(time.Since(first).Microseconds()) / 1000
	b.Expected = int64(b.Conns) * int64(b.Published)

	tot := tot0
	last, lastChange := int64(-1), time.Now()
	for ctx.Err() == nil && time.Since(first) < broadcastTimeout && len(sent) > 0 {
		tot = f.totals()
		if tot.Complete(sent...) >= b.Conns {
			break
		}
		d := tot.Delivered(seqs...)
		if d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > broadcastStall {
			break
		}
		time.Sleep(broadcastPoll)
	}
	server1, client1, redis1 := r.probe.cpu(serverPids), r.probe.cpu(clientPids), r.probe.cpu(r.redisPids())

	b.Delivered = tot.Delivered(seqs...)
	// Connections subscribed during the broadcast (a ramp that stopped
	// early leaves some in flight) may get it too: complete is capped.
	b.ConnsComplete = min(tot.Complete(sent...), b.Conns)
	if len(sent) == 0 {
		b.ConnsComplete = 0
	}
	b.ConnsMissing = b.Conns - b.ConnsComplete
	b.Duplicates = tot.Duplicates - tot0.Duplicates
	var h hist.Hist
	var lastAt time.Time
	for _, s := range seqs {
		if d := tot.Messages[s]; d != nil {
			h.Merge(d.Latency.Snapshot())
			if d.Last.After(lastAt) {
				lastAt = d.Last
			}
		}
	}
	b.LatencyMs = results.LatencyOf(&h, cdfPoints)
	if !lastAt.IsZero() {
		b.CompletionMs = float64(lastAt.Sub(first).Microseconds()) / 1000
	}
	b.ServerCPUS, b.ClientCPUS, b.RedisCPUS = (server1 - server0).Seconds(), (client1 - client0).Seconds(), (redis1 - redis0).Seconds()
	if b.Delivered > 0 {
		b.CPUUsPerDelivery = (b.ServerCPUS + b.RedisCPUS) * 1e6 / float64(b.Delivered)
	}
	if b.PublishErrors > 0 || b.ConnsMissing > 0 || b.Duplicates > 0 {
		r.run.Problem("%s: broadcast %s: %d of %d delivered, %d connections missing one, %d duplicates, %d publish errors (%s)",
			f.design, name, b.Delivered, b.Expected, b.ConnsMissing, b.Duplicates, b.PublishErrors, b.FirstPublishError)
	}
	return b
}

// apiPublisher publishes through a server's HTTP API, as a backend would.
type apiPublisher struct {
	addr, key, channel string
	client             *http.Client
	data               []byte
}

// publish sends one stamped message (sequence seq, sent now).
func (p *apiPublisher) publish(ctx context.Context, seq uint64) error {
	if p.addr == "" {
		return fmt.Errorf("no API listener")
	}
	wire.Stamp(p.data, seq, time.Now())
	body, err := json.Marshal(map[string]string{"channel": p.channel, "b64": base64.StdEncoding.EncodeToString(p.data)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.addr+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "apikey "+p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish %d: %w", seq, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publish %d: %s: %s", seq, resp.Status, bytes.TrimSpace(reply))
	}
	return nil
}
