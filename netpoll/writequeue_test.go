package netpoll

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteQueuePartialWrites(t *testing.T) {
	var q WriteQueue
	q.Push([]byte("abc"))
	q.Push([]byte("de"))
	q.Push([]byte("fghi"))
	var vec [MaxIovecs][]byte
	var got []byte
	for _, n := range []int{1, 3, 1, 4} {
		flat := bytes.Join(q.vector(&vec), nil)
		got = append(got, flat[:n]...)
		q.advance(n)
	}
	if string(got) != "abcdefghi" || !q.Empty() || q.Len() != 0 {
		t.Fatalf("got %q, queue %+v", got, q)
	}
}

// TestWriteQueueFlush writes through a socket pair whose buffer fills: the
// queue keeps the rest (shared buffers untouched), and a later flush sends
// it in order; DropUnstarted keeps a partly written buffer whole.
func TestWriteQueueFlush(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	shared := bytes.Repeat([]byte("x"), 1000)
	var q WriteQueue
	for range 1000 {
		q.Push(shared)
	}
	writes, err := q.Flush(fds[0])
	if err != nil || writes == 0 || q.Empty() {
		t.Fatalf("first flush: %d writes, err %v, empty %v", writes, err, q.Empty())
	}
	accepted := 1000*len(shared) - q.Len()
	q.DropUnstarted()
	if q.Len() >= len(shared) {
		t.Fatalf("after DropUnstarted %d bytes wait, more than one buffer", q.Len())
	}
	want := accepted + q.Len() // the partly written buffer is finished
	got := 0
	buf := make([]byte, 1<<16)
	for got < want {
		n, err := unix.Read(fds[1], buf)
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		got += max(n, 0)
		if _, err := q.Flush(fds[0]); err != nil {
			t.Fatal(err)
		}
	}
	if got != want || got%len(shared) != 0 || !q.Empty() {
		t.Fatalf("read %d bytes, want %d on a buffer boundary; queue empty %v", got, want, q.Empty())
	}
	if !bytes.Equal(shared, bytes.Repeat([]byte("x"), 1000)) {
		t.Fatal("a shared buffer was modified")
	}
}
