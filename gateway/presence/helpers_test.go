package presence

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("time.Sleep")) // redistest's reapers may still be sleeping
}

const replyTimeout = 10 * time.Second

// members reads channel's members, sorted by client, failing the test on
// an error or a reply that never comes.
func members(t testing.TB, s Store, channel string) []Member {
	t.Helper()
	ms, err := membersErr(s, channel)
	if err != nil {
		t.Fatalf("Members(%q): %v", channel, err)
	}
	return ms
}

func membersErr(s Store, channel string) ([]Member, error) {
	type reply struct {
		ms  []Member
		err error
	}
	c := make(chan reply, 1)
	s.Members(channel, func(ms []Member, err error) { c <- reply{ms, err} })
	select {
	case r := <-c:
		slices.SortFunc(r.ms, func(a, b Member) int { return cmp.Compare(a.Client, b.Client) })
		return r.ms, r.err
	case <-time.After(replyTimeout):
		panic("Members: no reply within " + replyTimeout.String())
	}
}

func stats(t testing.TB, s Store, channel string) Stats {
	t.Helper()
	st, err := statsErr(s, channel)
	if err != nil {
		t.Fatalf("Stats(%q): %v", channel, err)
	}
	return st
}

func statsErr(s Store, channel string) (Stats, error) {
	type reply struct {
		st  Stats
		err error
	}
	c := make(chan reply, 1)
	s.Stats(channel, func(st Stats, err error) { c <- reply{st, err} })
	select {
	case r := <-c:
		return r.st, r.err
	case <-time.After(replyTimeout):
		panic("Stats: no reply within " + replyTimeout.String())
	}
}

// settle waits until every write made on each store so far has been
// applied: a store applies calls in order, so a read's reply means the
// writes before it are done.
func settle(t testing.TB, stores ...Store) {
	t.Helper()
	for _, s := range stores {
		stats(t, s, "settle")
	}
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// counted is what both stores offer besides Store.
type counted interface {
	Store
	Counters() *Counters
}
