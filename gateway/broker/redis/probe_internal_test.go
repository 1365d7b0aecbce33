package redis

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/broker"
	"github.com/wsgate/wsgate/gateway/broker/brokertest"
	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// TestProbeBehindAHeldPublication: a probe sent while the connection was
// idle can land behind a publication the reader then holds for a full hub.
// Its timeout passes while the reader holds; that is not deafness, and the
// connection is kept. To put the publication first, Redis is paused for
// writes (CLIENT PAUSE WRITE blocks PUBLISH and FCALL alike) while the
// publication and then the probe queue up, and unpaused in that order.
func TestProbeBehindAHeldPublication(t *testing.T) {
	srv := redistest.StartStandalone(t)
	b, err := New(Config{URL: srv.URL(), Node: "a", PubSubShards: 1,
		ProbeInterval: 300 * time.Millisecond, ProbeTimeout: 2 * time.Second,
		MaxBackpressure: 10 * time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := brokertest.NewRecorder()
	if err := b.Start(rec); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Subscribe("x")
	brokertest.Position(t, b, "x")
	conn := b.subs.conns[0]

	rec.SetFull(true)
	if _, err := srv.Do("CLIENT", "PAUSE", "5000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() {
		_, err := brokertest.Publish(b, "x", "held", broker.PublishOptions{})
		published <- err
	}()
	// The publication is queued in Redis (give it a moment to get there);
	// the next probe, due once the connection has been idle for an
	// interval, queues behind it.
	time.Sleep(100 * time.Millisecond)
	probes := conn.probeSeq.Load()
	brokertest.WaitFor(t, "a probe", 5*time.Second, func() bool { return conn.probeSeq.Load() > probes })
	// The probe's PUBLISH reaches Redis, and must be let through well
	// within its timeout (else the publish itself fails).
	time.Sleep(50 * time.Millisecond)
	if _, err := srv.Do("CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // held past the probe's 2 s timeout
	rec.SetFull(false)
	brokertest.WaitFor(t, "the held publication", 5*time.Second, func() bool { return rec.Count("x") == 1 })
	st := b.Stats()
	if st.DeafDetected.Load() != 0 || st.Reconnects.Load() != 0 {
		t.Fatalf("deaf %d, reconnects %d: a probe behind a held publication was taken for deafness",
			st.DeafDetected.Load(), st.Reconnects.Load())
	}
}
