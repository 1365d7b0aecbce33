package netpoll

import "testing"

// TestReadyQueuePriority: urgent descriptors are served before deferrable
// ones, in FIFO order within each class, but a deferrable one waits behind
// at most lowEvery urgent ones.
func TestReadyQueuePriority(t *testing.T) {
	q := newReadyQueue()
	descs := make([]Desc, 40)
	for i := range 4 {
		q.push(&descs[i], true) // deferrable: 0..3
	}
	for i := 4; i < 40; i++ {
		q.push(&descs[i], false) // urgent: 4..39
	}
	var order []int
	for range 40 {
		d, _ := q.pop()
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
