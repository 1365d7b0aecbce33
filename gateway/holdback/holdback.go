// Package holdback holds a stream's live items back while its history is
// read, then releases, in order, those the history did not already cover:
// neither a gap nor a duplicate at the seam between history and live.
//
// It is the one owner of that concept for the two places that need it: a
// hub channel repairing a gap from the broker's history (gateway/hub,
// items are publications, once per channel) and a subscriber resuming from
// an offset (gateway's session, items are frames, once per connection and
// only while it resumes). What a caller does with history, when it gives
// up, and how it bounds what is held (a count, the connection's queue
// bytes) stays the caller's policy; this package only judges positions
// and keeps the held items in order.
//
// A Buffer is not safe for concurrent use: its owner's lock guards it.
package holdback

// Position is where a stream's delivery stands: the last offset delivered,
// or covered by history, in an epoch. The zero Position knows nothing, so
// it covers nothing.
type Position struct {
	Epoch  string
	Offset uint64
}

// Verdict is how an item at (epoch, offset) relates to a Position.
type Verdict uint8

const (
	// Next: the next offset of the epoch — or the item has no offset (an
	// event, a stream without history) or the position knows nothing, so
	// there is nothing to check.
	Next Verdict = iota
	// Covered: at or below the position in its epoch (a duplicate).
	Covered
	// Gap: past the next offset: some offsets in between are missing.
	Gap
	// NewEpoch: the item belongs to another epoch (history was lost).
	NewEpoch
)

func (v Verdict) String() string {
	switch v {
	case Next:
		return "next"
	case Covered:
		return "covered"
	case Gap:
		return "gap"
	case NewEpoch:
		return "new epoch"
	}
	return "verdict?"
}

// Judge says how an item at (epoch, offset) follows p. The epoch is taken
// as bytes, as publications carry it, so the live path compares without
// allocating.
func (p Position) Judge(epoch []byte, offset uint64) Verdict {
	switch {
	case offset == 0 || p.Epoch == "":
		return Next
	case p.Epoch != string(epoch):
		return NewEpoch
	case offset <= p.Offset:
		return Covered
	case offset == p.Offset+1:
		return Next
	}
	return Gap
}

// Advance moves p to (epoch, offset); an item without offset leaves it
// where it is. The epoch string is built only when it changes.
func (p *Position) Advance(epoch []byte, offset uint64) {
	if offset == 0 {
		return
	}
	if p.Epoch != string(epoch) {
		p.Epoch = string(epoch)
	}
	p.Offset = offset
}

// Buffer holds items back in arrival order while history is read. The
// zero Buffer is empty and not holding.
type Buffer[T any] struct {
	items   []item[T]
	size    int  // the sizes of the held items, added up
	holding bool // between Start and the Release that ends it
}

type item[T any] struct {
	epoch  []byte // not copied: the caller's items are immutable
	offset uint64 // 0: no position (an event): never covered
	size   int
	v      T
}

// Start begins holding (again): what is already held stays, in order.
func (b *Buffer[T]) Start() { b.holding = true }

// Holding reports whether items are being held back.
func (b *Buffer[T]) Holding() bool { return b.holding }

// Len is how many items are held.
func (b *Buffer[T]) Len() int { return len(b.items) }

// Hold appends v, at (epoch, offset) and counting size against the
// caller's bound, and returns the size held in all.
func (b *Buffer[T]) Hold(epoch []byte, offset uint64, v T, size int) int {
	b.items = append(b.items, item[T]{epoch: epoch, offset: offset, size: size, v: v})
	b.size += size
	return b.size
}

// First returns the position of the first held item that has one.
func (b *Buffer[T]) First() (epoch []byte, offset uint64, ok bool) {
	for _, it := range b.items {
		if it.offset != 0 {
			return it.epoch, it.offset, true
		}
	}
	return nil, 0, false
}

// Release ends the hold and walks the held items in order against *pos,
// which deliver keeps current (it advances pos as it delivers, and may
// move it to a new epoch): an item *pos covers is dropped; every other
// one is passed to deliver with its verdict. When deliver returns false
// (it started a repair of its own), that item and the rest stay held, in
// order, and the hold goes on; deliver must not Hold. Release returns how
// many items it dropped as covered.
func (b *Buffer[T]) Release(pos *Position, deliver func(v T, verdict Verdict) bool) (covered int) {
	items := b.items
	b.items, b.size, b.holding = nil, 0, false
	for i, it := range items {
		verdict := pos.Judge(it.epoch, it.offset)
		if verdict == Covered {
			covered++
			continue
		}
		if !deliver(it.v, verdict) {
			b.keep(items[i:])
			return covered
		}
	}
	return covered
}

// keep holds rest again after a Release stopped.
func (b *Buffer[T]) keep(rest []item[T]) {
	b.items = append(b.items, rest...)
	for _, it := range rest {
		b.size += it.size
	}
	b.holding = true
}

// Uncovered ends the hold and returns, in order, the held items that
// history up to pos did not cover: the items without offset, those of
// another epoch, and those past pos.Offset in its epoch (pos stays where
// history left it). The zero pos (no history) returns everything.
func (b *Buffer[T]) Uncovered(pos Position) []T {
	var out []T
	b.Release(&pos, func(v T, _ Verdict) bool {
		out = append(out, v)
		return true
	})
	return out
}
