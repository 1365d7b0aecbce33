package gateway

import (
	"bytes"
	"context"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/wsgate/wsgate/gateway/wsframe"
)

// TestBurstToAReadingClient: frames queued faster than they are flushed
// (the hub queues a whole round, or a repaired channel's history and held
// publications, before it flushes) are not a slow consumer's backlog while
// the socket takes all it is offered: a reading client gets a 20 KiB burst
// under a 16 KiB --max-queue-bytes, with no 4008.
func TestBurstToAReadingClient(t *testing.T) {
	const frames, size = 20, 1 << 10
	s, clients := startWithClientsConfig(t, 1, func(c *Config) { c.MaxQueueBytes = 16 << 10 })
	c := s.index.all()[0]
	frame := wsframe.Frame(wsframe.OpText, bytes.Repeat([]byte("x"), size))
	for range frames {
		c.enqueue([][]byte{frame})
	}
	c.flush()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range frames {
		typ, got, err := clients[0].Read(ctx)
		if err != nil || typ != cws.MessageText || len(got) != size {
			t.Fatalf("frame %d of %d: %v %d bytes, %v", i+1, frames, typ, len(got), err)
		}
	}
	if n := s.metrics.SlowConsumers.Load(); n != 0 {
		t.Fatalf("%d slow consumers, want 0", n)
	}
}
