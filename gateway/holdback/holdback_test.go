package holdback

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	at := Position{Epoch: "e1", Offset: 5}
	for _, tc := range []struct {
		pos    Position
		epoch  string
		offset uint64
		want   Verdict
	}{
		{at, "e1", 6, Next},
		{at, "e1", 5, Covered},
		{at, "e1", 1, Covered},
		{at, "e1", 7, Gap},
		{at, "e2", 1, NewEpoch},
		{at, "e2", 6, NewEpoch},
		{at, "", 0, Next},                      // an event: no offset, nothing to check
		{at, "e1", 0, Next},                    // a publication without history position
		{Position{}, "e1", 9, Next},            // the position knows nothing yet
		{Position{Epoch: "e1"}, "e1", 1, Next}, // an epoch's beginning
		{Position{Epoch: "e1"}, "e1", 2, Gap},
	} {
		if got := tc.pos.Judge([]byte(tc.epoch), tc.offset); got != tc.want {
			t.Errorf("%+v judges %s:%d as %v, want %v", tc.pos, tc.epoch, tc.offset, got, tc.want)
		}
	}
}

func TestAdvance(t *testing.T) {
	var p Position
	p.Advance([]byte("e1"), 3)
	p.Advance(nil, 0) // an event leaves it where it is
	if p != (Position{Epoch: "e1", Offset: 3}) {
		t.Fatalf("position %+v", p)
	}
	p.Advance([]byte("e2"), 1)
	if p != (Position{Epoch: "e2", Offset: 1}) {
		t.Fatalf("position after a new epoch %+v", p)
	}
	epoch := []byte("e2")
	if n := testing.AllocsPerRun(100, func() {
		p.Advance(epoch, p.Offset+1)
		_ = p.Judge(epoch, p.Offset+1)
	}); n != 0 {
		t.Fatalf("%v allocations per judged and advanced item in one epoch, want 0", n)
	}
}

// parse reads a test item: "e1:4" (epoch e1, offset 4) or "ev" (an
// event, no offset).
func parse(s string) (epoch []byte, offset uint64) {
	if s == "ev" {
		return nil, 0
	}
	e, o, _ := strings.Cut(s, ":")
	fmt.Sscan(o, &offset)
	return []byte(e), offset
}

// TestRelease walks the ways a hold ends. Two callers' policies: "resume"
// (a session: Uncovered against the fixed position history reached) and
// "repair" (the hub: deliver in order, advancing the position, stop at a
// gap or a new epoch, whose own repair would start).
func TestRelease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  string
		pos     Position
		held    string
		want    string // released, in order
		verdict string // verdicts of the released (repair policy)
		rest    string // still held afterwards
		covered int
	}{
		{name: "in order", policy: "repair", pos: Position{"e1", 3}, held: "e1:4 e1:5 e1:6",
			want: "e1:4 e1:5 e1:6", verdict: "next next next"},
		{name: "overlap with history", policy: "resume", pos: Position{"e1", 5}, held: "e1:3 e1:4 e1:5 e1:6 e1:7",
			want: "e1:6 e1:7", covered: 3},
		{name: "overlap, repair drops duplicates as it goes", policy: "repair", pos: Position{"e1", 5},
			held: "e1:5 e1:6 e1:6 e1:7", want: "e1:6 e1:7", verdict: "next next", covered: 2},
		{name: "events are never covered and keep their place", policy: "resume", pos: Position{"e1", 5},
			held: "e1:4 ev e1:5 e1:6 ev", want: "ev e1:6 ev", covered: 2},
		{name: "gap inside held items", policy: "repair", pos: Position{"e1", 3}, held: "e1:4 e1:5 e1:8 e1:9",
			want: "e1:4 e1:5", verdict: "next next", rest: "e1:8 e1:9"},
		{name: "gap inside held items, resume releases past it", policy: "resume", pos: Position{"e1", 3},
			held: "e1:4 ev e1:8", want: "e1:4 ev e1:8"},
		{name: "epoch change stops a repair", policy: "repair", pos: Position{"e1", 5}, held: "e1:6 ev e2:1 e2:2",
			want: "e1:6 ev", verdict: "next next", rest: "e2:1 e2:2"},
		{name: "epoch change: resume covers only its own epoch", policy: "resume", pos: Position{"e2", 3},
			held: "e1:7 ev e2:2 e2:3 e2:4", want: "e1:7 ev e2:4", covered: 2},
		{name: "history unreachable: everything", policy: "resume", pos: Position{}, held: "e1:7 ev e1:8",
			want: "e1:7 ev e1:8"},
		{name: "nothing held", policy: "resume", pos: Position{"e1", 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Buffer[string]
			b.Start()
			for _, s := range strings.Fields(tc.held) {
				epoch, offset := parse(s)
				b.Hold(epoch, offset, s, 1)
			}
			var got, verdicts []string
			covered := 0
			switch tc.policy {
			case "resume":
				before := b.Len()
				got = b.Uncovered(tc.pos)
				covered = before - len(got)
			case "repair":
				pos := tc.pos
				covered = b.Release(&pos, func(s string, v Verdict) bool {
					if v == Gap || v == NewEpoch {
						return false
					}
					pos.Advance(parse(s))
					got, verdicts = append(got, s), append(verdicts, v.String())
					return true
				})
			}
			if strings.Join(got, " ") != tc.want || strings.Join(verdicts, " ") != tc.verdict {
				t.Errorf("released %q (%q), want %q (%q)", got, verdicts, tc.want, tc.verdict)
			}
			if covered != tc.covered {
				t.Errorf("covered %d, want %d", covered, tc.covered)
			}
			var rest []string
			b.Release(&Position{}, func(s string, _ Verdict) bool { rest = append(rest, s); return true })
			if strings.Join(rest, " ") != tc.rest {
				t.Errorf("still held %q, want %q", rest, tc.rest)
			}
		})
	}
}

// TestStoppedReleaseHoldsOn: a release stopped by a gap goes on holding,
// in order (what arrives meanwhile queues behind the rest), with the size
// of what is still held, and the next release resumes where it stopped.
func TestStoppedReleaseHoldsOn(t *testing.T) {
	var b Buffer[string]
	if b.Holding() {
		t.Fatal("the zero Buffer holds")
	}
	b.Start()
	for _, s := range []string{"e1:2", "e1:5", "e1:6"} {
		epoch, offset := parse(s)
		b.Hold(epoch, offset, s, 10)
	}
	pos := Position{"e1", 1}
	next := func(s string, v Verdict) bool {
		if v != Next {
			return false
		}
		pos.Advance(parse(s))
		return true
	}
	b.Release(&pos, next)
	if !b.Holding() || b.Len() != 2 || pos.Offset != 2 {
		t.Fatalf("after a stopped release: holding %v, %d held, position %+v", b.Holding(), b.Len(), pos)
	}
	if epoch, first, ok := b.First(); !ok || string(epoch) != "e1" || first != 5 {
		t.Fatalf("first held %s:%d %v, want e1:5", epoch, first, ok)
	}
	if total := b.Hold([]byte("e1"), 7, "e1:7", 10); total != 30 {
		t.Fatalf("held size %d, want 30 (the rest and the new one)", total)
	}
	pos.Offset = 4 // the repair filled 3..4
	if got := b.Uncovered(pos); strings.Join(got, " ") != "e1:5 e1:6 e1:7" {
		t.Fatalf("released %q", got)
	}
	if b.Holding() || b.Len() != 0 {
		t.Fatalf("after the release: holding %v, %d held", b.Holding(), b.Len())
	}
}

// TestBoundReached: Hold reports the running size the caller bounds (the
// hub counts publications, a session the frame bytes against its queue
// limit); giving up at the bound is the caller's policy: here, as the hub
// does, skip to just before the first held item and release.
func TestBoundReached(t *testing.T) {
	const bound = 4
	var b Buffer[uint64]
	b.Start()
	pos := Position{"e1", 2} // 3 is missing and history is slow
	off := uint64(4)
	for ; b.Len() < bound; off++ {
		if n := b.Hold([]byte("e1"), off, off, 1); n != b.Len() {
			t.Fatalf("size %d with %d held", n, b.Len())
		}
	}
	if off != 4+bound {
		t.Fatalf("bound reached at offset %d", off)
	}
	_, first, _ := b.First()
	pos.Offset = first - 1 // 3 declared lost
	var got []uint64
	b.Release(&pos, func(off uint64, v Verdict) bool {
		if v != Next {
			return false
		}
		pos.Offset, got = off, append(got, off)
		return true
	})
	if !slices.Equal(got, []uint64{4, 5, 6, 7}) || b.Holding() {
		t.Fatalf("released %v, holding %v", got, b.Holding())
	}
}
