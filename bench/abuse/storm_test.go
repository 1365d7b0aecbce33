package abuse

import "testing"

func TestStormSource(t *testing.T) {
	count := map[string]int{}
	for i := range 500 {
		count[stormSource(i, 4)]++
	}
	// Five shares: two for the first address, one for each other.
	if count["127.0.1.1"] != 200 || count["127.0.1.2"] != 100 || count["127.0.1.4"] != 100 || len(count) != 4 {
		t.Fatalf("%v", count)
	}
	if stormSource(7, 1) != "127.0.1.1" {
		t.Fatal(stormSource(7, 1))
	}
}

// TestStormMerge: rounds add up, per-connection maxima stay maxima.
func TestStormMerge(t *testing.T) {
	a := &StormStats{Rounds: 1, Dialed: 10, Accepted: 6, Refused: map[string]int{"429": 4}, MaxPerIP: 3, PerRound: []StormRound{{Accepted: 6}}}
	b := &StormStats{Rounds: 2, Dialed: 20, Accepted: 9, Refused: map[string]int{"429": 1, "503": 10}, MaxPerIP: 5, FirstError: "x", PerRound: []StormRound{{}, {}}}
	var total *StormStats
	total = a.mergeInto(total)
	total = b.mergeInto(total)
	total = (*StormStats)(nil).mergeInto(total)
	if total.Rounds != 3 || total.Dialed != 30 || total.Accepted != 15 || total.Refused["429"] != 5 || total.Refused["503"] != 10 ||
		total.MaxPerIP != 5 || total.FirstError != "x" || len(total.PerRound) != 3 {
		t.Fatalf("%+v", total)
	}
}
