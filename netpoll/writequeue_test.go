package netpoll

import (
	"bytes"
	"fmt"
	"testing"
	"time"

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
	fds := smallSocketPair(t)
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

// TestDiscard drops a TCP socket's input without reading it and reports
// EOF once the peer has closed.
func TestDiscard(t *testing.T) {
	fd, client := tcpPair(t)
	discard := func(n int) (got int, err error) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err = Discard(fd, n)
			if err != unix.EAGAIN || time.Now().After(deadline) {
				return got, err
			}
			time.Sleep(time.Millisecond)
		}
	}
	if _, err := client.Write(bytes.Repeat([]byte("y"), 3000)); err != nil {
		t.Fatal(err)
	}
	if n, err := discard(1000); n != 1000 || err != nil {
		t.Fatalf("Discard 1000: %d, %v", n, err)
	}
	if n, err := discard(1 << 20); n != 2000 || err != nil {
		t.Fatalf("Discard the rest: %d, %v", n, err)
	}
	if _, err := Discard(fd, 1<<20); err != unix.EAGAIN {
		t.Fatalf("Discard on an empty socket: %v, want EAGAIN", err)
	}
	client.Close()
	if n, err := discard(1 << 20); n != 0 || err != nil {
		t.Fatalf("Discard after the peer closed: %d, %v, want EOF", n, err)
	}
}

// TestWriteQueueSmallFrames flushes many small frames (the path that
// copies them into one write) through a socket pair whose buffer fills,
// and reads back every byte in order.
func TestWriteQueueSmallFrames(t *testing.T) {
	fds := smallSocketPair(t)
	var q WriteQueue
	var want []byte
	for i := range 2000 {
		frame := []byte(fmt.Sprintf("<%d>", i))
		want = append(want, frame...)
		q.Push(frame)
	}
	var got []byte
	buf := make([]byte, 1<<16)
	for len(got) < len(want) {
		writes, err := q.Flush(fds[0])
		if err != nil {
			t.Fatal(err)
		}
		if writes == 0 && q.Empty() {
			break
		}
		n, err := unix.Read(fds[1], buf)
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		got = append(got, buf[:max(n, 0)]...)
	}
	for len(got) < len(want) {
		n, err := unix.Read(fds[1], buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), len(want), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) || !q.Empty() {
		t.Fatalf("read %d bytes, want %d in order; queue empty %v", len(got), len(want), q.Empty())
	}
}

// smallSocketPair is a non-blocking socket pair whose first end has a
// small send buffer, so that a flush fills it.
func smallSocketPair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	return fds
}
