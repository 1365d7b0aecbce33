package rediskeys

import "testing"

// TestLayout pins the names a backend computes on its own: changing them
// breaks every deployment that publishes through Redis directly.
func TestLayout(t *testing.T) {
	l := Layout{Prefix: DefaultPrefix, Partitions: DefaultPartitions}
	p := l.Partition("news")
	tag := l.Tag("news")
	if want := "wsgate:{" + itoa(p) + "}:"; tag != want {
		t.Fatalf("tag %q, want %q", tag, want)
	}
	for got, want := range map[string]string{
		l.PubSub("news"):              tag + "c:news",
		l.Meta("news"):                tag + "m:news",
		l.History("news"):             tag + "h:news",
		l.Idempotency("news", "k1"):   tag + "i:news|k1",
		l.Presence("news")[0]:         tag + "pz:news",
		l.Presence("news")[1]:         tag + "ph:news",
		l.Presence("news")[2]:         tag + "pu:news",
		ChannelOf(l.PubSub("a:b}:c")): "a:b}:c",
		ChannelOf("probe"):            "",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	// Every key of a channel is in one slot.
	s := Slot(l.PubSub("news"))
	pk := l.Presence("news")
	for _, k := range append(pk[:], l.Meta("news"), l.History("news")) {
		if Slot(k) != s {
			t.Errorf("%s in slot %d, not %d", k, Slot(k), s)
		}
	}
	// Redis Cluster's published examples.
	if Slot("foo") != 12182 || Slot("{user1000}.following") != Slot("user1000") {
		t.Errorf("Slot(foo) = %d, want 12182", Slot("foo"))
	}
}

func itoa(n uint32) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
