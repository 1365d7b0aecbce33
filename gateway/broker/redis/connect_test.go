package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// TestNewContextGivesUp: with Redis unreachable, New keeps retrying the
// first connection; NewContext stops when its context is done and says
// so (serve's SIGTERM while Redis is down at start). A bad URL fails at
// once, and CheckURL finds it without connecting.
func TestNewContextGivesUp(t *testing.T) {
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", redistest.FreePort(t)) // nothing listens there
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	b, err := redis.NewContext(ctx, redis.Config{URL: url})
	if err == nil {
		b.Close()
		t.Fatalf("NewContext connected to %s, where nothing listens", url)
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("NewContext after %v: %v, want the context's error within a few seconds", time.Since(start), err)
	}
	for _, bad := range []string{"http://x", "redis://[::1"} {
		if err := redis.CheckURL(bad); err == nil || !strings.Contains(err.Error(), "redis url") {
			t.Errorf("CheckURL(%q) = %v, want a redis url error", bad, err)
		}
		if _, err := redis.NewContext(context.Background(), redis.Config{URL: bad}); err == nil {
			t.Errorf("NewContext(%q) accepted it", bad)
		}
	}
	if err := redis.CheckURL(url); err != nil {
		t.Errorf("CheckURL(%q) = %v", url, err)
	}
}
