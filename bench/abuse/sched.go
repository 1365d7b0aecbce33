package abuse

import (
	"fmt"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Scheduling classes of the abuser's process (--abuser-sched).
const (
	// SchedIdle runs the abuser only on CPU time nothing else wants. The
	// abuser stands for clients on other machines: at the same priority its
	// dials (0.7 s user + 1 s system CPU per 3.3 s of storm) would come out of
	// the two cores the gateway and the measured clients share, and the
	// clients' latency would measure the host's scheduler, not the gateway.
	SchedIdle = "idle"
	// SchedNormal runs it like any other process (SCHED_OTHER, nice 0).
	SchedNormal = "normal"
	// SchedInProcess is recorded when the abuser runs inside wsbench, whose
	// class it shares.
	SchedInProcess = "in-process"
)

// startIdle starts cmd under SCHED_IDLE. A child inherits the scheduling
// policy of the thread that forks it, so the fork happens on a locked
// thread set to SCHED_IDLE for the moment and restored after; a thread
// that cannot be restored stays locked and ends with its goroutine.
func startIdle(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		was, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			errc <- fmt.Errorf("sched_getattr: %w", err)
			return
		}
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0); err != nil {
			errc <- fmt.Errorf("sched_setattr SCHED_IDLE: %w", err)
			return
		}
		err = cmd.Start()
		if unix.SchedSetAttr(0, was, 0) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
