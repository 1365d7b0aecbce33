package netpoll

import (
	"testing"
	"time"
)

// TestReadyQueuePriority: urgent descriptors are served before deferrable
// ones, in FIFO order within each class, but a deferrable one waits behind
// at most lowEvery urgent ones.
func TestReadyQueuePriority(t *testing.T) {
	q := newReadyQueue(1)
	descs := make([]Desc, 40)
	for i := range 4 {
		q.push(&descs[i], true) // deferrable: 0..3
	}
	for i := 4; i < 40; i++ {
		q.push(&descs[i], false) // urgent: 4..39
	}
	var order []int
	for range 40 {
		d, deferrable := q.pop()
		if deferrable {
			q.doneLow()
		}
		for i := range descs {
			if d == &descs[i] {
				order = append(order, i)
			}
		}
	}
	// lowEvery urgent, one deferrable, and so on; FIFO within each class.
	var want []int
	urgent, low := 4, 0
	for len(want) < 40 {
		for k := 0; k < lowEvery && urgent < 40; k++ {
			want = append(want, urgent)
			urgent++
		}
		if low < 4 {
			want = append(want, low)
			low++
		}
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("pop order %v, want %v", order, want)
		}
	}
	q.close()
	if d, _ := q.pop(); d != nil {
		t.Fatal("pop on a closed, empty queue returned a descriptor")
	}
}

// TestReadyQueueLowLimit: no more deferrable descriptors are served at once
// than the limit; urgent ones still are, and the next deferrable one waits
// for doneLow.
func TestReadyQueueLowLimit(t *testing.T) {
	q := newReadyQueue(1)
	descs := make([]Desc, 3)
	q.push(&descs[0], true)
	q.push(&descs[1], true)
	if d, low := q.pop(); d != &descs[0] || !low {
		t.Fatal("first deferrable not served")
	}
	got := make(chan *Desc)
	go func() {
		d, _ := q.pop()
		got <- d
	}()
	q.push(&descs[2], false)
	if d := <-got; d != &descs[2] {
		t.Fatal("urgent not served while a deferrable one runs")
	}
	go func() {
		d, _ := q.pop()
		got <- d
	}()
	select {
	case <-got:
		t.Fatal("a second deferrable was served beyond the limit")
	case <-time.After(20 * time.Millisecond):
	}
	q.doneLow()
	if d := <-got; d != &descs[1] {
		t.Fatal("the waiting deferrable was not served after doneLow")
	}
	q.close()
}
