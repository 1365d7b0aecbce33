package redis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/brokertest"
	"github.com/wsgate/wsgate/gateway/broker/redis"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// TestPublishEvent: a join/leave event published on one instance reaches
// every subscribed instance (the publisher included) as an envelope of
// its kind, in order with the channel's publications, without an offset,
// and takes none: the channel's position and history do not move.
func TestPublishEvent(t *testing.T) {
	srv := redistest.StartStandalone(t)
	testPublishEvent(t, srv.URL())
}

// TestPublishEventCluster: the same over sharded Pub/Sub (SPUBLISH).
func TestPublishEventCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	testPublishEvent(t, cl.URL())
}

func testPublishEvent(t *testing.T, url string) {
	a, recA := startBroker(t, url, "a", nil)
	b, recB := startBroker(t, url, "b", nil)
	const n = 20 // channels, spread over partitions (and nodes)
	for i := range n {
		a.Subscribe(fmt.Sprint("ev", i))
		b.Subscribe(fmt.Sprint("ev", i))
	}
	for i := range n {
		position(t, a, fmt.Sprint("ev", i)) // answers once subscribed
		position(t, b, fmt.Sprint("ev", i))
	}
	for i := range n {
		ch := fmt.Sprint("ev", i)
		b.PublishEvent(ch, codec.KindJoin, "b-1", "42")
		if _, err := publish(b, ch, "m"); err != nil {
			t.Fatal(err)
		}
		b.PublishEvent(ch, codec.KindLeave, "b-1", "")
	}
	for _, rec := range []*brokertest.Recorder{recA, recB} {
		waitFor(t, "events delivered", 5*time.Second, func() bool {
			for i := range n {
				if rec.Count(fmt.Sprint("ev", i)) < 3 {
					return false
				}
			}
			return true
		})
		for i := range n {
			ch := fmt.Sprint("ev", i)
			got := rec.Got(ch)
			if len(got) != 3 {
				t.Fatalf("%s: %d deliveries, want 3", ch, len(got))
			}
			join, msg, leave := got[0], got[1], got[2]
			if join.Kind != codec.KindJoin || string(join.Client) != "b-1" || string(join.User) != "42" ||
				join.Offset != 0 || string(join.Node) != "b" || join.Time == 0 {
				t.Fatalf("%s: join %+v", ch, join)
			}
			if msg.Kind != codec.KindPublication || msg.Offset != 1 || string(msg.Data) != "m" {
				t.Fatalf("%s: publication %+v", ch, msg)
			}
			if leave.Kind != codec.KindLeave || string(leave.Client) != "b-1" || len(leave.User) != 0 || leave.Offset != 0 {
				t.Fatalf("%s: leave %+v", ch, leave)
			}
		}
	}
	// Events used no offset and entered no history.
	ch := "ev0"
	if pos := position(t, a, ch); pos.Offset != 1 {
		t.Fatalf("position after 1 publication and 2 events: %d", pos.Offset)
	}
	res := make(chan broker.HistoryResult, 1)
	a.History(ch, broker.HistoryQuery{}, func(r broker.HistoryResult, err error) {
		if err != nil {
			t.Error(err)
		}
		res <- r
	})
	if h := <-res; len(h.Publications) != 1 || h.Publications[0].Offset != 1 {
		t.Fatalf("history %+v, want only offset 1", h.Publications)
	}
	if d := a.Stats().EventsDropped.Load() + b.Stats().EventsDropped.Load(); d != 0 {
		t.Fatalf("%d events dropped", d)
	}
	if u := a.Stats().Undecodable.Load() + b.Stats().Undecodable.Load(); u != 0 {
		t.Fatalf("%d undecodable", u)
	}
}

// TestPublishEventNeverBlocks: with the pipeline full, events are dropped
// and counted at once instead of waiting.
func TestPublishEventNeverBlocks(t *testing.T) {
	srv := redistest.StartStandalone(t)
	a, _ := startBroker(t, srv.URL(), "a", func(c *redis.Config) { c.Publishers, c.QueueDepth = 1, 1 })
	srv.Kill() // publishes now wait for Redis: the one-slot queue fills
	t.Cleanup(srv.Restart)
	start := time.Now()
	for range 1000 {
		a.PublishEvent("c", codec.KindJoin, "x", "")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 events took %v", d)
	}
	if a.Stats().EventsDropped.Load() == 0 {
		t.Fatal("no event counted as dropped with a full pipeline")
	}
}
