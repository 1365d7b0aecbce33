package redis

import (
	"slices"
	"testing"

	"github.com/wsgate/wsgate/gateway/broker"
)

// TestMergePositions: position reads of one channel share the first read's
// call only while nothing else of that channel comes between them; other
// channels' jobs do not break a run; every read is answered exactly once.
func TestMergePositions(t *testing.T) {
	p := &publisher{b: &Broker{}}
	var answered []string
	read := func(channel, name string) job {
		return job{channel: channel, position: true, done: func(broker.PublishResult, error) {
			answered = append(answered, name)
		}}
	}
	publish := job{channel: "a", data: []byte("x"), done: func(broker.PublishResult, error) {
		answered = append(answered, "publish")
	}}
	batch := []job{read("a", "r1"), read("a", "r2"), publish, read("a", "r3"), read("b", "r4"), read("a", "r5")}

	kept := p.mergePositions(batch)
	var kinds []string
	for _, j := range kept {
		kinds = append(kinds, j.channel+map[bool]string{true: ":read", false: ":publish"}[j.position])
	}
	if want := []string{"a:read", "a:publish", "a:read", "b:read"}; !slices.Equal(kinds, want) {
		t.Fatalf("sent %v, want %v", kinds, want)
	}
	for _, j := range kept {
		j.done(broker.PublishResult{}, nil)
	}
	if want := []string{"r1", "r2", "publish", "r3", "r5", "r4"}; !slices.Equal(answered, want) {
		t.Fatalf("answered %v, want %v", answered, want)
	}
	if got := p.b.stats.PositionsShared.Load(); got != 2 {
		t.Fatalf("shared = %d, want 2", got)
	}
	if len(p.leaders) != 0 {
		t.Fatalf("leaders left over: %v", p.leaders)
	}
	if kept := p.mergePositions([]job{publish, read("a", "r6"), publish}); len(kept) != 3 {
		t.Fatalf("a single read among publications: sent %d jobs, want 3", len(kept))
	}
}
