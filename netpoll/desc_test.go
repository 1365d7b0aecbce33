package netpoll

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The descriptor state machine (idle → queued/running → idle or closed)
// over a real socketpair, under -race: every event reaches the handler,
// never twice at once, nothing after Close.

// recorder is a Handler that reads what arrives, records the events it was
// dispatched with, and re-arms (or closes, when told to).
type recorder struct {
	desc     Desc
	mu       sync.Mutex
	events   []Event
	read     []byte
	inside   atomic.Int32 // handlers running now: must never exceed 1
	overlap  atomic.Bool
	write    atomic.Bool // re-arm with write interest
	closeNow atomic.Bool
	seen     chan Event
}

func (r *recorder) HandleEvent(w *Worker, ev Event) {
	if r.inside.Add(1) > 1 {
		r.overlap.Store(true)
	}
	time.Sleep(100 * time.Microsecond) // widen the window for overlaps
	if ev&EventRead != 0 {
		if n, err := Read(r.desc.Fd(), w.Scratch); err == nil && n > 0 {
			r.mu.Lock()
			r.read = append(r.read, w.Scratch[:n]...)
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.inside.Add(-1)
	if r.closeNow.Load() {
		_ = r.desc.Close()
	} else {
		_ = r.desc.Rearm(r.write.Load())
	}
	select {
	case r.seen <- ev:
	default:
	}
}

// waitFor waits until the handler was dispatched with want.
func (r *recorder) waitFor(t *testing.T, want Event) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-r.seen:
			if ev&want != 0 {
				return
			}
		case <-deadline:
			t.Fatalf("no %v event; got %v", want, r.snapshot())
		}
	}
}

func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// pair registers one end of a socketpair with a fresh poller and returns
// the recorder and the other end.
func pair(t *testing.T) (*Poller, *recorder, int) {
	t.Helper()
	p, fds := socketpairPoller(t)
	r := &recorder{seen: make(chan Event, 1024)}
	if err := p.Register(&r.desc, fds[0], r, time.Time{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.closeNow.Store(true)
		r.desc.Notify(EventNotify)
		time.Sleep(20 * time.Millisecond)
		_ = p.Close()
		unix.Close(fds[1])
	})
	return p, r, fds[1]
}

// socketpairPoller starts a small poller and makes a non-blocking stream
// socketpair for a test.
func socketpairPoller(t *testing.T) (*Poller, [2]int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Loops: 1, WorkersPerLoop: 4, ScratchBytes: 4096, TimerTick: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p, fds
}

func TestDescReadWriteHup(t *testing.T) {
	_, r, peer := pair(t)
	if _, err := unix.Write(peer, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, EventRead)
	// A second write after the re-arm is reported again (one-shot re-armed).
	if _, err := unix.Write(peer, []byte(" again")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := string(r.read)
		r.mu.Unlock()
		if got == "hello again" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %q, want %q", got, "hello again")
		}
		time.Sleep(time.Millisecond)
	}
	// Write interest: armed with it, a writable socket reports EventWrite.
	r.write.Store(true)
	r.desc.Notify(EventNotify)
	r.waitFor(t, EventWrite)
	r.write.Store(false)
	// The peer hangs up: EventHup.
	unix.Shutdown(peer, unix.SHUT_WR)
	r.waitFor(t, EventHup)
}

// TestDescNotifyStorm: notifications from many goroutines while the
// handler runs are never lost and never dispatch it twice at once.
func TestDescNotifyStorm(t *testing.T) {
	_, r, _ := pair(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				r.desc.Notify(EventNotify)
			}
		})
	}
	wg.Wait()
	// Once quiet, one more notification is dispatched.
	time.Sleep(20 * time.Millisecond)
	for len(r.seen) > 0 {
		<-r.seen
	}
	r.desc.Notify(EventNotify)
	r.waitFor(t, EventNotify)
	if r.overlap.Load() {
		t.Fatal("the handler ran twice at once for one descriptor")
	}
	if n := len(r.snapshot()); n == 0 || n > 8*200+1 {
		t.Fatalf("%d dispatches for %d notifications", n, 8*200+1)
	}
}

func TestDescTimer(t *testing.T) {
	_, r, _ := pair(t)
	r.desc.SetTimer(time.Now().Add(20 * time.Millisecond))
	r.waitFor(t, EventTimer)
	// A stopped timer does not fire.
	r.desc.SetTimer(time.Now().Add(20 * time.Millisecond))
	r.desc.StopTimer()
	n := len(r.snapshot())
	time.Sleep(80 * time.Millisecond)
	for _, ev := range r.snapshot()[n:] {
		if ev&EventTimer != 0 {
			t.Fatal("a stopped timer fired")
		}
	}
}

// TestDescTimerFar: a timer set beyond what a time.Duration holds (300
// years: a token's exp in year 2300) does not fire at the next tick, and
// the descriptor's other events still arrive.
func TestDescTimerFar(t *testing.T) {
	_, r, _ := pair(t)
	r.desc.SetTimer(time.Now().AddDate(300, 0, 0))
	time.Sleep(50 * time.Millisecond) // 10 ticks of 5 ms
	r.desc.Notify(EventNotify)
	r.waitFor(t, EventNotify)
	for _, ev := range r.snapshot() {
		if ev&EventTimer != 0 {
			t.Fatal("a timer set 300 years ahead fired within 10 ticks")
		}
	}
}

// TestDescTimerAfterIdle: with no timer left the timer goroutine sleeps;
// a timer set after that still fires on time.
func TestDescTimerAfterIdle(t *testing.T) {
	p, r, _ := pair(t)
	r.desc.SetTimer(time.Now().Add(10 * time.Millisecond))
	r.waitFor(t, EventTimer)
	// A tick with nothing to do (every 5 ms) puts it to sleep.
	for deadline := time.Now().Add(5 * time.Second); p.sleeps.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the timer goroutine kept ticking with no timer set")
		}
	}
	// While a timer waits, the ticks go on: no sleep over a 100 ms window.
	// A wake-up left pending by the first timer may still cost one more
	// sleep, so a loaded machine gets a few windows.
	r.desc.SetTimer(time.Now().Add(time.Hour))
	for try := 0; ; try++ {
		n := p.sleeps.Load()
		time.Sleep(100 * time.Millisecond)
		got := p.sleeps.Load()
		if got == n {
			break
		}
		if try == 4 {
			t.Fatalf("the timer goroutine slept %d times in 100 ms with a timer set", got-n)
		}
	}
	for range 3 {
		set := time.Now()
		r.desc.SetTimer(set.Add(20 * time.Millisecond))
		r.waitFor(t, EventTimer)
		if d := time.Since(set); d < 20*time.Millisecond {
			t.Fatalf("timer fired after %v, before its 20ms", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDescClose: after the handler closes the descriptor, neither the
// peer's bytes nor Notify nor a timer dispatch it again.
func TestDescClose(t *testing.T) {
	_, r, peer := pair(t)
	r.closeNow.Store(true)
	r.desc.Notify(EventNotify)
	r.waitFor(t, EventNotify)
	if !r.desc.Closed() {
		t.Fatal("not closed after Close")
	}
	n := len(r.snapshot())
	r.desc.Notify(EventNotify)
	_, _ = unix.Write(peer, []byte("late"))
	time.Sleep(50 * time.Millisecond)
	if got := len(r.snapshot()); got != n {
		t.Fatalf("%d dispatches after Close", got-n)
	}
	if err := r.desc.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// TestDescArmingKept: a dispatch by Notify or a timer leaves the fd's
// epoll arming in place (no epoll_ctl), yet no readiness is ever lost:
// bytes written between and during such dispatches are all read, and
// write interest still takes effect.
func TestDescArmingKept(t *testing.T) {
	_, r, peer := pair(t)
	want := 0
	for i := range 200 {
		r.desc.Notify(EventNotify)
		if i%7 == 0 {
			r.desc.SetTimer(time.Now())
		}
		if i%3 == 0 {
			if _, err := unix.Write(peer, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			want++
		}
		time.Sleep(50 * time.Microsecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.read)
		r.mu.Unlock()
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d bytes: a readiness was lost", got, want)
		}
		time.Sleep(time.Millisecond)
	}
	// Idle after a Notify-only dispatch: still armed, without write. The
	// events of the loop above are drained first, so the wait is for this
	// Notify's dispatch; the tag settles when its handler returns.
	time.Sleep(10 * time.Millisecond)
	for len(r.seen) > 0 {
		<-r.seen
	}
	r.desc.Notify(EventNotify)
	r.waitFor(t, EventNotify)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		tag := r.desc.tag.Load()
		if tag&armedBit != 0 && tag&armedWriteBit == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tag %#x: want armed for reading only", tag)
		}
	}
	r.write.Store(true)
	r.desc.Notify(EventNotify)
	r.waitFor(t, EventWrite)
	if r.overlap.Load() {
		t.Fatal("handler ran twice at once")
	}
}
