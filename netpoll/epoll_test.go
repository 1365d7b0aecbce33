package netpoll

import (
	"testing"

	"golang.org/x/sys/unix"
)

// An event collected for a registration that has since ended must not
// reach the descriptor that reuses its fd number.
func TestEpollDropsStaleEvents(t *testing.T) {
	e, err := newEpoll()
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	var first, second Desc
	first.SetDeferrable(true)
	if err := e.add(fd, &first, readEvents); err != nil {
		t.Fatal(err)
	}
	stale := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: int32(first.generation())}
	if err := e.del(fd); err != nil {
		t.Fatal(err)
	}
	if err := e.add(fd, &second, readEvents); err != nil {
		t.Fatal(err)
	}
	fresh := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: int32(second.generation())}

	ready := make([]*Desc, 2)
	e.lookup([]unix.EpollEvent{stale, fresh}, ready)
	if ready[0] != nil || ready[1] != &second {
		t.Fatalf("lookup = %p, %p; want nil, %p", ready[0], ready[1], &second)
	}
	if first.tag.Load()&deferrableBit == 0 {
		t.Fatal("registering dropped the deferrable flag")
	}
}

// After close, registrations fail instead of touching a reused fd number.
func TestEpollClosed(t *testing.T) {
	e, err := newEpoll()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.close(); err != nil {
		t.Fatal(err)
	}
	var d Desc
	if err := e.add(0, &d, readEvents); err != errEpollClosed {
		t.Fatalf("add after close: %v, want errEpollClosed", err)
	}
}
