package memory_test

import (
	"errors"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/brokertest"
	"github.com/wsgate/wsgate/gateway/broker/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newBroker(t *testing.T, sink broker.Sink) broker.Broker {
	b := memory.New("test")
	if err := b.Start(sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) { brokertest.Run(t, newBroker) }

// TestFullSinkRefusesWithoutOffset: a publication the hub cannot take is
// refused (ErrOverloaded) and uses no offset.
func TestFullSinkRefusesWithoutOffset(t *testing.T) {
	rec := brokertest.NewRecorder()
	b := newBroker(t, rec)
	b.Subscribe("c")
	rec.SetFull(true)
	if _, err := brokertest.Publish(b, "c", "x", broker.PublishOptions{IdempotencyKey: "k"}); !errors.Is(err, broker.ErrOverloaded) {
		t.Fatalf("publish to a full sink: %v", err)
	}
	rec.SetFull(false)
	res, err := brokertest.Publish(b, "c", "x", broker.PublishOptions{IdempotencyKey: "k"})
	if err != nil || res.Offset != 1 || res.Replayed {
		t.Fatalf("retry with the key: %+v %v, want offset 1, published", res, err)
	}
}

// TestIdempotencyKeysOfOneChannel: the 100,000 keys the embedded broker
// remembers (README) are shared by all channels, so one channel may use
// them all: its first key is still answered as a replay after 99,999
// more, and forgotten (published again) only past the bound.
func TestIdempotencyKeysOfOneChannel(t *testing.T) {
	b := newBroker(t, nil)
	const capacity = 100_000
	key := func(i int) broker.PublishOptions { return broker.PublishOptions{IdempotencyKey: strconv.Itoa(i)} }
	for i := range capacity {
		if _, err := brokertest.Publish(b, "c", "x", key(i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if res, err := brokertest.Publish(b, "c", "x", key(0)); err != nil || !res.Replayed || res.Offset != 1 {
		t.Fatalf("first key again after %d others: %+v, %v; want a replay of offset 1", capacity-1, res, err)
	}
	if _, err := brokertest.Publish(b, "c", "x", key(capacity)); err != nil {
		t.Fatal(err)
	}
	if res, err := brokertest.Publish(b, "c", "x", key(1)); err != nil || !res.Replayed || res.Offset != 2 {
		t.Fatalf("second key at the bound: %+v, %v; want a replay of offset 2", res, err)
	}
	if res, err := brokertest.Publish(b, "c", "x", key(0)); err != nil || res.Replayed || res.Offset != capacity+2 {
		t.Fatalf("first key past the bound: %+v, %v; want it forgotten and published anew", res, err)
	}
}

// TestClosedRefuses: a publish after Close is refused as unavailable (not
// published), not acknowledged into a history nobody will read.
func TestClosedRefuses(t *testing.T) {
	b := newBroker(t, nil)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := brokertest.Publish(b, "c", "x", broker.PublishOptions{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish after Close: %v, want ErrUnavailable", err)
	}
}
