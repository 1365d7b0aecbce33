package presence

import (
	"bytes"
	"errors"
	"testing"
)

// step is one write in a behaviour case, made on store `on` (of three).
// A client lives on one instance, so all steps naming a client use one
// store: stores apply their own calls in order, but calls on different
// instances race, as they do between gateways.
type step struct {
	on      int
	channel string
	join    *Member // nil: leave
	client  string  // leave
}

func join(on int, channel, client, user, info string) step {
	m := &Member{Client: client, User: user}
	if info != "" {
		m.Info = []byte(info)
	}
	return step{on: on, channel: channel, join: m}
}

func leave(on int, channel, client string) step {
	return step{on: on, channel: channel, client: client}
}

type behaviourCase struct {
	name     string
	steps    []step
	members  map[string][]Member // channel → members sorted by client
	stats    map[string]Stats
	rejected int64 // joins refused as invalid, over all three stores
}

var binaryInfo = string(bytes.Repeat([]byte{0, ':', 0xff, '7'}, MaxInfo/4))

var behaviourCases = []behaviourCase{
	{
		name:    "unknown channel is empty",
		members: map[string][]Member{"nobody": nil},
		stats:   map[string]Stats{"nobody": {}},
	},
	{
		name: "several users, several clients per user, anonymous clients",
		steps: []step{
			join(0, "room", "n0.1", "alice", "phone"),
			join(1, "room", "n1.1", "alice", "laptop"),
			join(2, "room", "n2.1", "bob", ""),
			join(0, "room", "n0.2", "", ""),
			join(1, "room", "n1.2", "", "guest"),
			join(2, "room", "n2.2", "carol", "x"),
		},
		members: map[string][]Member{"room": {
			{Client: "n0.1", User: "alice", Info: []byte("phone")},
			{Client: "n0.2"},
			{Client: "n1.1", User: "alice", Info: []byte("laptop")},
			{Client: "n1.2", Info: []byte("guest")},
			{Client: "n2.1", User: "bob"},
			{Client: "n2.2", User: "carol", Info: []byte("x")},
		}},
		stats: map[string]Stats{"room": {Clients: 6, Users: 3}},
	},
	{
		name: "a user counts until its last client leaves",
		steps: []step{
			join(0, "room", "a1", "alice", ""),
			join(1, "room", "a2", "alice", ""),
			join(2, "room", "b1", "bob", ""),
			leave(0, "room", "a1"),
			join(0, "gone", "a3", "alice", ""),
			leave(0, "gone", "a3"),
		},
		members: map[string][]Member{
			"room": {{Client: "a2", User: "alice"}, {Client: "b1", User: "bob"}},
			"gone": nil,
		},
		stats: map[string]Stats{"room": {Clients: 2, Users: 2}, "gone": {}},
	},
	{
		name: "joining again replaces user and info",
		steps: []step{
			join(0, "room", "c1", "alice", "old"),
			join(0, "room", "c2", "alice", ""),
			join(0, "room", "c1", "bob", "new"),
			join(2, "room", "c3", "dave", ""),
			join(2, "room", "c3", "", ""), // logged out: anonymous now
		},
		members: map[string][]Member{"room": {
			{Client: "c1", User: "bob", Info: []byte("new")},
			{Client: "c2", User: "alice"},
			{Client: "c3"},
		}},
		stats: map[string]Stats{"room": {Clients: 3, Users: 2}},
	},
	{
		name: "leaving twice or unknown clients changes nothing",
		steps: []step{
			join(0, "room", "c1", "alice", ""),
			leave(1, "room", "nope"),
			leave(0, "elsewhere", "c1"),
			join(2, "room", "c2", "bob", ""),
			leave(2, "room", "c2"),
			leave(2, "room", "c2"),
		},
		members: map[string][]Member{"room": {{Client: "c1", User: "alice"}}, "elsewhere": nil},
		stats:   map[string]Stats{"room": {Clients: 1, Users: 1}, "elsewhere": {}},
	},
	{
		name: "leave then join again",
		steps: []step{
			join(0, "room", "c1", "alice", "1"),
			leave(0, "room", "c1"),
			join(0, "room", "c1", "alice", "2"),
		},
		members: map[string][]Member{"room": {{Client: "c1", User: "alice", Info: []byte("2")}}},
		stats:   map[string]Stats{"room": {Clients: 1, Users: 1}},
	},
	{
		name: "channels are independent",
		steps: []step{
			join(0, "a", "c1", "alice", ""),
			join(0, "b", "c1", "alice", ""),
			join(1, "b", "c2", "bob", ""),
			leave(0, "a", "c1"),
		},
		members: map[string][]Member{"a": nil, "b": {{Client: "c1", User: "alice"}, {Client: "c2", User: "bob"}}},
		stats:   map[string]Stats{"a": {}, "b": {Clients: 2, Users: 2}},
	},
	{
		name: "user and info are opaque bytes",
		steps: []step{
			join(0, "room:{x}:ph", "c:1", "12:odd:user", binaryInfo),
			join(1, "room:{x}:ph", "c:2", "12:odd:user", ":"),
		},
		members: map[string][]Member{"room:{x}:ph": {
			{Client: "c:1", User: "12:odd:user", Info: []byte(binaryInfo)},
			{Client: "c:2", User: "12:odd:user", Info: []byte(":")},
		}},
		stats: map[string]Stats{"room:{x}:ph": {Clients: 2, Users: 1}},
	},
	{
		name: "invalid members are refused and counted",
		steps: []step{
			join(0, "room", "", "alice", ""),
			join(1, "room", "c1", "alice", binaryInfo+"!"),
			join(2, "room", "c2", "bob", ""),
		},
		members:  map[string][]Member{"room": {{Client: "c2", User: "bob"}}},
		stats:    map[string]Stats{"room": {Clients: 1, Users: 1}},
		rejected: 2,
	},
}

// runBehaviour runs every case against three stores from open that share
// one view (three Redis instances, or one Memory store three times). Each
// case gets fresh stores and channel names of its own.
func runBehaviour(t *testing.T, open func(t *testing.T) [3]counted) {
	for i, tc := range behaviourCases {
		t.Run(tc.name, func(t *testing.T) {
			checkOneStorePerClient(t, tc.steps)
			stores := open(t)
			prefix := "case" + string(rune('a'+i)) + "/"
			for _, s := range tc.steps {
				if s.join != nil {
					stores[s.on].Join(prefix+s.channel, *s.join)
				} else {
					stores[s.on].Leave(prefix+s.channel, s.client)
				}
			}
			settle(t, stores[0], stores[1], stores[2])
			for on, s := range stores {
				for ch, want := range tc.members {
					if got := members(t, s, prefix+ch); !equalMembers(got, want) {
						t.Errorf("store %d: members of %q:\n got  %v\n want %v", on, ch, got, want)
					}
				}
				for ch, want := range tc.stats {
					if got := stats(t, s, prefix+ch); got != want {
						t.Errorf("store %d: stats of %q = %+v, want %+v", on, ch, got, want)
					}
				}
			}
			var rejected int64
			seen := map[counted]bool{}
			for _, s := range stores {
				if !seen[s] {
					seen[s] = true
					rejected += s.Counters().Rejected.Load()
				}
			}
			if rejected != tc.rejected {
				t.Errorf("rejected %d joins, want %d", rejected, tc.rejected)
			}
		})
	}
	t.Run("closed store", func(t *testing.T) {
		stores := open(t)
		stores[0].Join("c", Member{Client: "c1", User: "u"})
		if err := stores[0].Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		stores[0].Join("c", Member{Client: "c2"}) // ignored, no panic
		stores[0].Leave("c", "c1")
		if _, err := membersErr(stores[0], "c"); !errors.Is(err, ErrClosed) {
			t.Errorf("Members after Close: %v, want ErrClosed", err)
		}
		if _, err := statsErr(stores[0], "c"); !errors.Is(err, ErrClosed) {
			t.Errorf("Stats after Close: %v, want ErrClosed", err)
		}
	})
	// The counters reach /metrics through gateway/metrics.go (tested there).
	t.Run("rejected counter", func(t *testing.T) {
		stores := open(t)
		stores[0].Join("c", Member{})
		if n := stores[0].Counters().Rejected.Load(); n != 1 {
			t.Errorf("Rejected = %d after a join without a client id, want 1", n)
		}
	})
}

func checkOneStorePerClient(t *testing.T, steps []step) {
	on := map[string]int{}
	for _, s := range steps {
		c := s.client
		if s.join != nil {
			c = s.join.Client
		}
		if prev, ok := on[c]; ok && prev != s.on {
			t.Fatalf("bad case: client %q used on stores %d and %d", c, prev, s.on)
		}
		on[c] = s.on
	}
}

func equalMembers(a, b []Member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Client != b[i].Client || a[i].User != b[i].User || !bytes.Equal(a[i].Info, b[i].Info) {
			return false
		}
	}
	return true
}

func TestMemoryBehaviour(t *testing.T) {
	runBehaviour(t, func(t *testing.T) [3]counted {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		return [3]counted{m, m, m}
	})
}

// TestMemoryCopiesInfo: the caller may reuse its buffer after Join, and
// may modify what Members returns.
func TestMemoryCopiesInfo(t *testing.T) {
	m := NewMemory()
	info := []byte("abc")
	m.Join("c", Member{Client: "c1", Info: info})
	info[0] = 'X'
	got := members(t, m, "c")
	got[0].Info[1] = 'Y'
	if again := members(t, m, "c"); string(again[0].Info) != "abc" {
		t.Fatalf("info is %q, want abc", again[0].Info)
	}
}

func TestEncodeDecode(t *testing.T) {
	for _, tc := range []struct{ user, info string }{
		{"", ""}, {"alice", ""}, {"", "info"}, {"a:b", "1:2"}, {"10", "0123456789"}, {"\x00", binaryInfo},
	} {
		m, err := decode("c", encode(tc.user, []byte(tc.info)))
		if err != nil || m.User != tc.user || string(m.Info) != tc.info || m.Client != "c" {
			t.Errorf("round trip of %q/%q: %+v %v", tc.user, tc.info, m, err)
		}
	}
	for _, bad := range []string{"", "x", "5:abc", "-1:", ":abc"} {
		if _, err := decode("c", bad); err == nil {
			t.Errorf("decode(%q) succeeded", bad)
		}
	}
}
