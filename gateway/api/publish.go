package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
)

const (
	// maxBroadcastChannels bounds one broadcast, so that one request
	// cannot hold the API for minutes or flush the idempotency memory.
	maxBroadcastChannels = 10000
	// broadcastParallelism overlaps broker round trips (a Redis publish
	// is one each) without letting one broadcast take every connection.
	broadcastParallelism = 8
)

type publishRequest struct {
	Channel string `json:"channel"`
	payload
	IdempotencyKey *string `json:"idempotency_key"`
}

type broadcastRequest struct {
	Channels []string `json:"channels"`
	payload
	IdempotencyKey *string `json:"idempotency_key"`
}

// pubResult is where a publication landed.
type pubResult struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// channelResult is one channel of a broadcast: the embedded result on
// success (a nil pointer adds no fields), error and outcome otherwise.
type channelResult struct {
	Channel string `json:"channel"`
	*pubResult
	Error   string `json:"error,omitempty"`
	Outcome string `json:"outcome,omitempty"`

	backendFailed bool // failed with a 5xx (a timeout too), not the caller's mistake
}

func (h *handler) publish(ctx context.Context, w http.ResponseWriter, body []byte) (any, error) {
	req, err := decode[publishRequest](body)
	if err != nil {
		return nil, err
	}
	if err := h.checkChannel("channel", req.Channel); err != nil {
		return nil, err
	}
	data, err := req.bytes()
	if err != nil {
		return nil, err
	}
	key, err := idempotencyKey(req.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	res, err := h.b.Publish(ctx, req.Channel, data, key)
	if err != nil {
		return nil, &publishFailure{err}
	}
	h.failures.succeeded()
	if res.Replayed {
		// As Stripe does: lets a caller tell a repeat from a first run.
		w.Header().Set("Idempotent-Replayed", "true")
	}
	return pubResult{res.Offset, res.Epoch}, nil
}

func (h *handler) broadcast(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	req, err := decode[broadcastRequest](body)
	if err != nil {
		return nil, err
	}
	if err := h.checkChannels(req.Channels); err != nil {
		return nil, err
	}
	data, err := req.bytes()
	if err != nil {
		return nil, err
	}
	key, err := idempotencyKey(req.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	results := make([]channelResult, len(req.Channels))
	sem := make(chan struct{}, broadcastParallelism)
	var wg sync.WaitGroup
	for i, ch := range req.Channels {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = h.publishChannel(ctx, key, ch, data)
		})
	}
	wg.Wait()
	if broadcastSucceeded(results) {
		h.failures.succeeded()
	}
	// A partial failure is still a 200: the caller must look at every
	// result anyway, and retrying with the same idempotency_key
	// publishes only to the channels that failed.
	return struct {
		Results []channelResult `json:"results"`
	}{results}, nil
}

func (h *handler) publishChannel(ctx context.Context, key, channel string, data []byte) channelResult {
	if err := ctx.Err(); err != nil { // timed out: skip the rest quickly
		return channelResult{Channel: channel, Error: err.Error(), Outcome: outcomeNotPublished, backendFailed: true}
	}
	res, err := h.b.Publish(ctx, channel, data, key)
	if err != nil {
		f := &publishFailure{err}
		status, reason := classify(f)
		if status >= 500 {
			h.failures.failed("broadcast", err)
		}
		return channelResult{Channel: channel, Error: reason, Outcome: f.outcome(), backendFailed: status >= 500}
	}
	return channelResult{Channel: channel, pubResult: &pubResult{res.Offset, res.Epoch}}
}

// broadcastSucceeded reports whether a broadcast shows the broker working:
// some channel was published and none failed on the Backend's side. A
// broadcast is a 200 even when every channel failed, and one that
// published to a healthy Redis Cluster shard while another shard is down
// has not ended that outage. Channels refused for the caller's mistake
// (409, 400) say nothing either way.
func broadcastSucceeded(results []channelResult) bool {
	published := false
	for _, r := range results {
		if r.backendFailed {
			return false
		}
		published = published || r.pubResult != nil
	}
	return published
}

// Outcomes of a failed publish, in error responses: whether a retry
// without the same idempotency_key could publish twice.
const (
	outcomeNotPublished = "not_published"
	outcomeUnknown      = "unknown"
)

// publishFailure is a publish's error; the response says whether it was
// published ("outcome").
type publishFailure struct{ err error }

func (f *publishFailure) Error() string { return f.err.Error() }
func (f *publishFailure) Unwrap() error { return f.err }

// outcome: a publish cut off by the deadline or by a lost answer may
// still have been made; any other failure was not published.
func (f *publishFailure) outcome() string {
	if errors.Is(f.err, ErrOutcomeUnknown) || errors.Is(f.err, context.DeadlineExceeded) ||
		errors.Is(f.err, context.Canceled) {
		return outcomeUnknown
	}
	return outcomeNotPublished
}

// checkChannels validates a broadcast's channel list as a whole, before
// anything is published: a typo must not leave half a broadcast sent.
func (h *handler) checkChannels(chs []string) error {
	switch {
	case len(chs) == 0:
		return badRequest(`missing "channels"`)
	case len(chs) > maxBroadcastChannels:
		return badRequest(`"channels" has %d entries, at most %d are allowed`, len(chs), maxBroadcastChannels)
	}
	seen := make(map[string]struct{}, len(chs))
	for i, ch := range chs {
		field := "channels[" + strconv.Itoa(i) + "]"
		if err := h.checkChannel(field, ch); err != nil {
			return err
		}
		if _, dup := seen[ch]; dup {
			return badRequest("%s: channel %q is listed twice", field, ch)
		}
		seen[ch] = struct{}{}
	}
	return nil
}
