package abuse

import (
	"context"
	"time"

	"github.com/wsgate/wsgate/bench/harness/scrape"
)

// sampler polls /metrics for the largest wsgate_conns_open.
type sampler struct {
	stopCh chan struct{}
	done   chan struct{}
	max    float64
	n      int
}

func startSampler(sc *scrape.Client, every time.Duration) *sampler {
	s := &sampler{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			m, err := sc.Metrics(ctx)
			cancel()
			if err == nil {
				s.n++
				s.max = max(s.max, m["wsgate_conns_open"])
			}
			select {
			case <-s.stopCh:
				return
			case <-time.After(every):
			}
		}
	}()
	return s
}

func (s *sampler) stop() (maxOpen float64, samples int) {
	close(s.stopCh)
	<-s.done
	return s.max, s.n
}
