package memory_test

import (
	"errors"
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
