package gateway

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/broker"
)

// Table tests for the decisions the session makes without a socket:
// resume, command rate, permissions, origin policy.

func TestRecoverable(t *testing.T) {
	pubs := func(offs ...uint64) []broker.HistoryEntry {
		out := make([]broker.HistoryEntry, len(offs))
		for i, o := range offs {
			out[i] = broker.HistoryEntry{Offset: o}
		}
		return out
	}
	res := func(epoch string, top uint64, offs ...uint64) broker.HistoryResult {
		return broker.HistoryResult{Position: broker.Position{Epoch: epoch, Offset: top}, Publications: pubs(offs...)}
	}
	for _, tc := range []struct {
		name      string
		since     uint64
		epoch     string
		res       broker.HistoryResult
		ok        bool
		reasonHas string
	}{
		{"nothing missed", 5, "e", res("e", 5), true, ""},
		{"all missed in history", 2, "e", res("e", 5, 3, 4, 5), true, ""},
		{"from the start", 0, "e", res("e", 2, 1, 2), true, ""},
		{"another epoch", 2, "old", res("e", 5, 3, 4, 5), false, "epoch changed"},
		{"ahead of the stream", 9, "e", res("e", 5), false, "ahead"},
		{"history trimmed at the front", 1, "e", res("e", 5, 3, 4, 5), false, "too old"},
		{"history empty", 1, "e", res("e", 5), false, "too old"},
		{"history short of the top", 2, "e", res("e", 5, 3, 4), false, "too old"},
	} {
		ok, reason := recoverable(tc.since, tc.epoch, tc.res)
		if ok != tc.ok || (tc.reasonHas == "") != (reason == "") || !strings.Contains(reason, tc.reasonHas) {
			t.Errorf("%s: recoverable = %v %q, want %v with %q", tc.name, ok, reason, tc.ok, tc.reasonHas)
		}
	}
}

func TestLimiter(t *testing.T) {
	const sec = int64(1e9)
	for _, tc := range []struct {
		name  string
		rate  float64
		burst int
		at    []int64 // times of commands, ns
		want  string  // + allowed, - refused
	}{
		{"no limit", 0, 1, []int64{0, 0, 0, 0}, "++++"},
		{"burst then refuse", 1, 3, []int64{0, 0, 0, 0, 0}, "+++--"},
		{"refill at the rate", 2, 1, []int64{0, 0, sec / 2, sec / 2, sec}, "+-+-+"},
		{"refill capped at burst", 10, 2, []int64{0, 0, 10 * sec, 10 * sec, 10 * sec}, "++++-"},
	} {
		l := newLimiter(tc.burst, 0)
		got := ""
		for _, at := range tc.at {
			if l.allow(at, tc.rate, tc.burst) {
				got += "+"
			} else {
				got += "-"
			}
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// denied counts consecutive refusals and resets on success.
	l := newLimiter(1, 0)
	l.allow(0, 1, 1)
	l.allow(0, 1, 1)
	l.allow(0, 1, 1)
	if l.denied != 2 {
		t.Fatalf("denied %d after two refusals", l.denied)
	}
	l.allow(2*sec, 1, 1)
	if l.denied != 0 {
		t.Fatalf("denied %d after a success", l.denied)
	}
}

func TestPermissions(t *testing.T) {
	anon := Identity{}
	u42 := Identity{UserID: "42", Channels: []string{"vip:lounge"}}
	u7 := Identity{UserID: "7"}
	ns := func(sub, pub Rule) *Namespace { return &Namespace{Subscribe: sub, Publish: pub} }
	for _, tc := range []struct {
		name      string
		ns        *Namespace
		id        Identity
		channel   string
		sub, pubs bool
	}{
		{"anyone", ns(RuleAnyone, RuleAnyone), anon, "news", true, true},
		{"authenticated, anonymous", ns(RuleAuthenticated, RuleAuthenticated), anon, "news", false, false},
		{"authenticated, user", ns(RuleAuthenticated, RuleAuthenticated), u7, "news", true, true},
		{"claim listed", ns(RuleClaim, RuleClaim), u42, "vip:lounge", true, true},
		{"claim not listed", ns(RuleClaim, RuleClaim), u7, "vip:lounge", false, false},
		{"server only", ns(RuleServer, RuleServer), u42, "ops", false, false},
		{"subscribe only", ns(RuleAnyone, RuleServer), u42, "feed", true, false},
		{"private, owner", ns(RuleServer, RuleServer), u42, "user#42", true, true},
		{"private, other user", ns(RuleAnyone, RuleAnyone), u7, "user#42", false, false},
		{"private, anonymous", ns(RuleAnyone, RuleAnyone), anon, "user#", false, false},
		{"dialog, member", ns(RuleAnyone, RuleAnyone), u7, "chat:dialog#42,7", true, true},
		{"dialog, outsider", ns(RuleAnyone, RuleAnyone), Identity{UserID: "9"}, "chat:dialog#42,7", false, false},
	} {
		if got := maySubscribe(nil, tc.ns, tc.id, tc.channel, nil); got != tc.sub {
			t.Errorf("%s: maySubscribe = %v, want %v", tc.name, got, tc.sub)
		}
		if got := mayPublish(tc.ns, tc.id, tc.channel); got != tc.pubs {
			t.Errorf("%s: mayPublish = %v, want %v", tc.name, got, tc.pubs)
		}
	}
	// A subscription token without an authenticator grants nothing.
	if maySubscribe(nil, ns(RuleClaim, RuleClaim), u7, "vip:lounge", []byte("token")) {
		t.Error("a token was accepted with no authenticator configured")
	}
}

func TestOriginPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []string
		origin  string
		host    string
		want    bool
	}{
		{"no Origin (not a browser)", []string{"https://a.example"}, "", "h", true},
		{"default: same host", nil, "https://gw.example", "gw.example", true},
		{"default: same host and port", nil, "http://gw.example:8080", "gw.example:8080", true},
		{"default: other host", nil, "https://evil.example", "gw.example", false},
		{"any", []string{"*"}, "https://evil.example", "gw.example", true},
		{"exact", []string{"https://app.example"}, "https://app.example", "gw.example", true},
		{"exact, case and trailing slash", []string{" HTTPS://App.Example/ "}, "https://app.example", "gw", true},
		{"exact, other scheme", []string{"https://app.example"}, "http://app.example", "gw", false},
		{"list replaces same-host", []string{"https://app.example"}, "https://gw.example", "gw.example", false},
		{"wildcard subdomain", []string{"*.example.com"}, "https://a.b.example.com", "gw", true},
		{"wildcard not the apex", []string{"*.example.com"}, "https://example.com", "gw", false},
		{"wildcard not a lookalike", []string{"*.example.com"}, "https://evilexample.com", "gw", false},
		{"unparsable origin", []string{"*.example.com"}, "%zz", "gw", false},
		{"null origin", nil, "null", "gw", false},
	} {
		if got := newOriginPolicy(tc.allowed).allowed(tc.origin, tc.host); got != tc.want {
			t.Errorf("%s: allowed(%q, %q) = %v, want %v", tc.name, tc.origin, tc.host, got, tc.want)
		}
	}
}

// TestEncodingOpcodes: JSON travels in text frames, MessagePack in binary ones.
func TestEncodingOpcodes(t *testing.T) {
	s := &session{enc: codec.JSON}
	if f := s.frame([]byte("{}")); f[0]&0x0f != 0x1 {
		t.Errorf("JSON frame opcode %#x, want text", f[0]&0x0f)
	}
	s.enc = codec.Msgpack
	if f := s.frame([]byte{0x80}); f[0]&0x0f != 0x2 {
		t.Errorf("MessagePack frame opcode %#x, want binary", f[0]&0x0f)
	}
}
