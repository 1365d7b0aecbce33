package resume

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/wsgate/wsgate/bench/harness/results"
)

// Redis: what the storm cost, from INFO deltas.

// redisStats is one INFO reading.
type redisStats struct {
	calls map[string]int64 // commandstats calls by command
	total int64            // total_commands_processed
	infos int64            // INFO calls (ours), to leave out
}

func newRedisInfo(url string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	return rueidis.NewClient(opt)
}

func readRedisStats(ctx context.Context, c rueidis.Client) (redisStats, error) {
	text, err := c.Do(ctx, c.B().Info().Section("stats", "commandstats").Build()).ToString()
	if err != nil {
		return redisStats{}, err
	}
	return parseRedisInfo(text), nil
}

// parseRedisInfo reads total_commands_processed and every
// "cmdstat_<name>:calls=N,…" line.
func parseRedisInfo(text string) redisStats {
	s := redisStats{calls: map[string]int64{}}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			s.total, _ = strconv.ParseInt(v, 10, 64)
			continue
		}
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		if v, err := strconv.ParseInt(n, 10, 64); err == nil {
			s.calls[name] = v
		}
	}
	s.infos = s.calls["info"]
	return s
}

// calibratePublish publishes a few rounds with nobody subscribed and
// returns the Redis calls per publication, by command.
func (r *runner) calibratePublish(ctx context.Context) (map[string]float64, error) {
	const rounds = 20
	pub := r.pub
	s0, err := readRedisStats(ctx, r.info)
	if err != nil {
		return nil, err
	}
	n := int64(rounds * len(pub.channels))
	for range rounds {
		for i := range pub.channels {
			if err := pub.publish(i); err != nil {
				return nil, err
			}
		}
	}
	if !pub.waitIdle(10 * time.Second) {
		return nil, errors.New("publications not acknowledged")
	}
	if refused := pub.refused.Load(); refused > 0 {
		return nil, fmt.Errorf("%d publications refused", refused)
	}
	s1, err := readRedisStats(ctx, r.info)
	if err != nil {
		return nil, err
	}
	per := map[string]float64{}
	for name, v := range s1.calls {
		if d := v - s0.calls[name]; d > 0 && name != "info" {
			per[name] = float64(d) / float64(n)
		}
	}
	pub.resetCounts()
	return per, nil
}

// redisWindow subtracts the publisher's share from the storm window's
// calls.
func redisWindow(s0, s1 redisStats, perPublish map[string]float64, published int64, window time.Duration, recovered int) *RedisOps {
	r := &RedisOps{WindowMs: results.Round3(window.Seconds() * 1000), Calls: map[string]int64{}, PerPublish: perPublish,
		Publisher: map[string]float64{}, Net: map[string]float64{}}
	var net float64
	for name, v := range s1.calls {
		d := v - s0.calls[name]
		if d <= 0 || name == "info" {
			continue
		}
		r.Calls[name] = d
		share := math.Min(float64(d), perPublish[name]*float64(published))
		if share > 0 {
			r.Publisher[name] = results.Round3(share)
		}
		r.Net[name] = results.Round3(float64(d) - share)
		net += float64(d) - share
	}
	r.TotalProcessed = s1.total - s0.total - (s1.infos - s0.infos)
	if recovered > 0 {
		r.NetPerClient = results.Round3(net / float64(recovered))
		r.FcallPerClient = results.Round3(r.Net["fcall"] / float64(recovered))
	}
	return r
}
