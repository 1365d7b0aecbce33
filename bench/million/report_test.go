package million

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/hist"
)

func snapshotOf(ds ...time.Duration) hist.Snapshot {
	var h hist.Hist
	for _, d := range ds {
		h.Record(d)
	}
	return h.Snapshot()
}

// Reports travel as JSON lines; Aggregate adds up what the processes say.
func TestAggregateReports(t *testing.T) {
	base := time.Unix(1700000000, 0)
	in := []Report{
		{Event: EventReport, Conns: 10, Dialed: true, Upgraded: 10, Subscribed: 10, Pings: 20,
			HandshakeP50Ms: 3, HandshakeP99Ms: 9, HandshakeMaxMs: 12,
			Closed: 1, Closes: map[int]int{4008: 1},
			Received: map[uint64]int{0b11: 9, 0b01: 1},
			Messages: []MessageReport{
				{Seq: 0, Latency: snapshotOf(10*time.Millisecond, 20*time.Millisecond), LastNs: base.Add(time.Second).UnixNano()},
				{Seq: 1, Latency: snapshotOf(30 * time.Millisecond), LastNs: base.Add(3 * time.Second).UnixNano()},
			}},
		{Event: EventReport, Conns: 8, Dialed: true, Upgraded: 7, Failed: 1, Redials: 4, FirstError: "conn 3: refused",
			Subscribed: 6, SubscribeErrors: 1, HandshakeP50Ms: 5, HandshakeP99Ms: 20, HandshakeMaxMs: 25,
			Closes: map[int]int{}, Received: map[uint64]int{0b11: 5, 0b10: 1, 0: 2}, Duplicates: 2, Bad: 1,
			Messages: []MessageReport{
				{Seq: 0, Latency: snapshotOf(40 * time.Millisecond), LastNs: base.Add(2 * time.Second).UnixNano()},
			}},
		{Event: EventReport, Conns: 5, Dialed: false, Upgraded: 2, Subscribed: 2, HandshakeP50Ms: 4, HandshakeP99Ms: 4, HandshakeMaxMs: 4},
	}
	reports := make([]*Report, 0, len(in)+1)
	for i := range in {
		b, err := json.Marshal(in[i])
		if err != nil {
			t.Fatal(err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		reports = append(reports, &r)
	}
	tot := Aggregate(reports)
	if tot.Processes != 3 || tot.Conns != 23 || tot.Upgraded != 19 || tot.Failed != 1 || tot.Redials != 4 || tot.Subscribed != 18 ||
		tot.SubscribeErrors != 1 || tot.Closed != 1 || tot.Pings != 20 || tot.Duplicates != 2 || tot.Bad != 1 ||
		tot.FirstError != "conn 3: refused" {
		t.Errorf("totals %+v", tot)
	}
	if tot.AllDialed {
		t.Error("AllDialed with a process still dialing")
	}
	if Aggregate(append(reports[:2:2], nil)).AllDialed {
		t.Error("AllDialed with a process that has not reported")
	}
	if !Aggregate(reports[:2]).AllDialed {
		t.Error("not AllDialed when every process is done")
	}
	if tot.HandshakeP50Ms != 4 || tot.HandshakeP99Ms != 20 || tot.HandshakeMaxMs != 25 {
		t.Errorf("handshake %v / %v / %v, want 4 (median) / 20 / 25 (worst)", tot.HandshakeP50Ms, tot.HandshakeP99Ms, tot.HandshakeMaxMs)
	}
	if want := map[uint64]int{0b11: 14, 0b01: 1, 0b10: 1, 0: 2}; !maps.Equal(tot.Received, want) {
		t.Errorf("received %v, want %v", tot.Received, want)
	}
	if tot.Complete(0, 1) != 14 || tot.Complete(0) != 15 || tot.Complete(1) != 15 || tot.Complete() != 18 {
		t.Errorf("complete(0,1), (0), (1), () = %d, %d, %d, %d", tot.Complete(0, 1), tot.Complete(0), tot.Complete(1), tot.Complete())
	}
	if tot.Delivered(0) != 3 || tot.Delivered(0, 1) != 4 || tot.Delivered(7) != 0 {
		t.Errorf("delivered %d / %d / %d", tot.Delivered(0), tot.Delivered(0, 1), tot.Delivered(7))
	}
	m0 := tot.Messages[0]
	if !m0.Last.Equal(base.Add(2*time.Second)) || m0.Latency.Max() != 40*time.Millisecond {
		t.Errorf("message 0: last %v, max %v", m0.Last, m0.Latency.Max())
	}
	if got := tot.ClosesByName(); !maps.Equal(got, map[string]int{"4008": 1}) {
		t.Errorf("closes %v", got)
	}
	if got := Aggregate(nil); got.Processes != 0 || got.ClosesByName() != nil {
		t.Errorf("empty aggregate %+v", got)
	}
}
