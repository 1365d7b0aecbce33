package netpoll

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newTestSender(t *testing.T, size int) *Sender {
	t.Helper()
	s, err := NewSender(size)
	if err != nil {
		t.Fatalf("NewSender: %v (io_uring is enabled on the hosts this project supports)", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tcpPair returns a connected loopback TCP pair: the server side as a raw
// non-blocking fd, the client side as a net.Conn.
func tcpPair(t testing.TB) (int, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	var dupErr error
	_ = raw.Control(func(f uintptr) { fd, dupErr = unix.Dup(int(f)) })
	server.Close()
	if dupErr != nil {
		t.Fatal(dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, client
}

// TestSenderShapes sends one batch to sockets whose queues take every path
// of a flush: one buffer, small buffers copied flat, large buffers by
// sendmsg, and more buffers than one write carries (finished by Flush).
// Every byte arrives in order and the shared buffers are untouched.
func TestSenderShapes(t *testing.T) {
	small := bytes.Repeat([]byte("s"), 100)
	large := bytes.Repeat([]byte("L"), 3000)
	shapes := map[string][][]byte{
		"one":      {large},
		"flat":     {small, []byte("tail"), small},
		"sendmsg":  {large, small, large},
		"overflow": repeat(small, 3*MaxIovecs),
	}
	s := newTestSender(t, 8)
	type want struct {
		idx    int
		data   []byte
		client net.Conn
	}
	var wants []want
	for name, bufs := range shapes {
		fd, client := tcpPair(t)
		q := new(WriteQueue)
		q.PushAll(bufs)
		wants = append(wants, want{s.Add(fd, q), bytes.Join(bufs, nil), client})
		t.Cleanup(func() {
			if !q.Empty() {
				t.Errorf("%s: %d bytes left in the queue", name, q.Len())
			}
		})
	}
	s.Send()
	for _, w := range wants {
		writes, err := s.Result(w.idx)
		if err != nil || writes < 1 {
			t.Fatalf("item %d: %d writes, %v", w.idx, writes, err)
		}
		got := make([]byte, len(w.data))
		w.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(w.client, got); err != nil || !bytes.Equal(got, w.data) {
			t.Fatalf("item %d: read %v, data equal %v", w.idx, err, bytes.Equal(got, w.data))
		}
	}
	s.Reset()
	if s.Len() != 0 || !bytes.Equal(large, bytes.Repeat([]byte("L"), 3000)) {
		t.Fatal("Reset left items, or a shared buffer was modified")
	}
}

// expectRead reads len(want) bytes from c and fails unless they are want.
func expectRead(t *testing.T, c net.Conn, want string) {
	t.Helper()
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// TestSenderFullSocket: a socket that takes part of its queue, then none,
// keeps the rest queued with no error and without blocking the batch,
// exactly as WriteQueue.Flush does; once read, the rest goes out.
func TestSenderFullSocket(t *testing.T) {
	fds := smallSocketPair(t)
	s := newTestSender(t, 4)
	q := new(WriteQueue)
	chunk := bytes.Repeat([]byte("x"), 1000)
	q.PushAll(repeat(chunk, 1000))
	total := q.Len()
	s.Add(fds[0], q)
	start := time.Now()
	s.Send()
	if writes, err := s.Result(0); err != nil || writes < 1 || q.Empty() {
		t.Fatalf("first batch: %d writes, %v, queue empty %v", writes, err, q.Empty())
	}
	s.Reset()
	s.Add(fds[0], q)
	s.Send() // now the socket is full: EAGAIN, nothing written
	if writes, err := s.Result(0); err != nil || writes != 0 {
		t.Fatalf("full socket: %d writes, %v", writes, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a full socket held the batch for %v", d)
	}
	s.Reset()
	got := 0
	buf := make([]byte, 1<<16)
	for got < total {
		n, err := unix.Read(fds[1], buf)
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		got += max(n, 0)
		if !q.Empty() {
			s.Add(fds[0], q)
			s.Send()
			if _, err := s.Result(0); err != nil {
				t.Fatal(err)
			}
			s.Reset()
		}
	}
	if got != total || !q.Empty() {
		t.Fatalf("read %d of %d bytes, queue empty %v", got, total, q.Empty())
	}
}

// TestSenderBrokenPeer: a socket whose peer is gone reports the write's
// error for its own item only.
func TestSenderBrokenPeer(t *testing.T) {
	s := newTestSender(t, 4)
	goneFD, gone := tcpPair(t)
	gone.(*net.TCPConn).SetLinger(0)
	gone.Close() // a reset
	okFD, ok := tcpPair(t)
	time.Sleep(50 * time.Millisecond) // let the reset arrive
	var qs [2]WriteQueue
	qs[0].Push([]byte("lost"))
	qs[1].Push([]byte("kept"))
	s.Add(goneFD, &qs[0])
	s.Add(okFD, &qs[1])
	s.Send()
	if _, err := s.Result(0); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("reset peer: err %v, want ECONNRESET or EPIPE", err)
	}
	if writes, err := s.Result(1); writes != 1 || err != nil {
		t.Fatalf("healthy peer: %d writes, %v", writes, err)
	}
	expectRead(t, ok, "kept")
}

// TestSenderBrokenRingFallsBack: after the ring breaks, a Sender still
// delivers, one write per queue.
func TestSenderBrokenRingFallsBack(t *testing.T) {
	s := newTestSender(t, 2)
	s.broken = true
	fd, client := tcpPair(t)
	q := new(WriteQueue)
	q.Push([]byte("hello"))
	s.Add(fd, q)
	s.Send()
	if writes, err := s.Result(0); writes != 1 || err != nil {
		t.Fatalf("%d writes, %v", writes, err)
	}
	expectRead(t, client, "hello")
}

// TestSenderWithdraw: SQEs the kernel did not take are reported as never
// submitted, and Send writes them itself.
func TestSenderWithdraw(t *testing.T) {
	s := newTestSender(t, 2)
	fd, client := tcpPair(t)
	q := new(WriteQueue)
	q.Push([]byte("again"))
	s.Add(fd, q)
	s.prepare(0)
	tail := atomic.LoadUint32(s.ring.sqTail) + 1
	atomic.StoreUint32(s.ring.sqTail, tail) // queued, and io_uring_enter refused it
	s.ring.withdraw(tail, s.done)
	s.finish(&s.items[0])
	if writes, err := s.Result(0); writes != 1 || err != nil {
		t.Fatalf("%d writes, %v", writes, err)
	}
	expectRead(t, client, "again")
	if atomic.LoadUint32(s.ring.sqTail) != tail-1 {
		t.Fatal("withdraw left the SQE in the ring")
	}
}

// TestURingWaitIsBounded: a send that cannot complete inline (here, on
// purpose, a blocking socket that is full and no MSG_DONTWAIT) does not
// hold the caller: the wait times out and the ring reports itself broken.
func TestURingWaitIsBounded(t *testing.T) {
	fds := smallSocketPair(t)
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(fds[0], chunk); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.SetNonblock(fds[0], false); err != nil {
		t.Fatal(err)
	}
	r, err := newURing(2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close() // before the sockets close: cancels the parked send
	r.waitTimeout = unix.NsecToTimespec(int64(100 * time.Millisecond))
	e := r.sqe(0)
	e.opcode, e.fd = uringOpSend, int32(fds[0])
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&chunk[0]))), uint32(len(chunk))
	start := time.Now()
	err = r.submitAndWait(1, func(uint64, int32) { t.Error("a parked send completed") })
	if !errors.Is(err, errURingBroken) {
		t.Fatalf("err %v, want errURingBroken", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the wait took %v", d)
	}
}

// BenchmarkSend compares one write(2) per socket with one io_uring batch
// per 64 sockets, sending an 810-byte frame (a compressed fan-out
// delivery) to each of 1,024 loopback TCP sockets per op. The reported
// ns/socket is the process's CPU per send, which on loopback includes the
// receiving socket's TCP work (bench/README.md, "Batched sends"):
//
//	go test -run XXX -bench Send -benchtime 200x ./netpoll
func BenchmarkSend(b *testing.B) {
	const sockets = 1024
	fds, drain := benchSockets(b, sockets)
	frame := make([]byte, 810)
	b.Run("write", func(b *testing.B) {
		measureCPUPerSocket(b, sockets, drain, func() {
			for _, fd := range fds {
				if n, err := Write(fd, frame); n != len(frame) {
					b.Fatalf("write: %d, %v", n, err)
				}
			}
		})
	})
	b.Run("uring", func(b *testing.B) {
		s, err := NewSender(64)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		qs := make([]WriteQueue, sockets)
		measureCPUPerSocket(b, sockets, drain, func() {
			for i, fd := range fds {
				qs[i].Push(frame)
				s.Add(fd, &qs[i])
				if s.Len() == s.Cap() || i == len(fds)-1 {
					s.Send()
					for k := range s.Len() {
						if writes, err := s.Result(k); writes != 1 || err != nil {
							b.Fatalf("send: %d writes, %v", writes, err)
						}
					}
					s.Reset()
				}
			}
		})
	})
}

// benchSockets connects n loopback TCP pairs and returns the server sides
// and a func that reads everything the client sides hold.
func benchSockets(b *testing.B, n int) ([]int, func()) {
	fds := make([]int, n)
	clients := make([]net.Conn, n)
	for i := range fds {
		fds[i], clients[i] = tcpPair(b)
	}
	buf := make([]byte, 1<<16)
	drain := func() {
		for _, c := range clients {
			raw, _ := c.(*net.TCPConn).SyscallConn()
			_ = raw.Read(func(fd uintptr) bool {
				for {
					if k, err := unix.Read(int(fd), buf); k <= 0 || err != nil {
						return true
					}
				}
			})
		}
	}
	return fds, drain
}

// measureCPUPerSocket runs send b.N times, draining the peers between
// runs outside the measurement, and reports the process's CPU per socket.
func measureCPUPerSocket(b *testing.B, sockets int, drain, send func()) {
	var cpu time.Duration
	for range b.N {
		drain()
		before := processCPU()
		send()
		cpu += processCPU() - before
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*sockets), "cpu-ns/socket")
}

func processCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
