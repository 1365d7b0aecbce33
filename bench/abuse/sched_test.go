package abuse

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStartIdle: the child runs under SCHED_IDLE, and no thread of this
// process is left with it.
func TestStartIdle(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := startIdle(cmd); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	attr, err := unix.SchedGetAttr(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if attr.Policy != unix.SCHED_IDLE {
		t.Fatalf("child policy %d, want SCHED_IDLE (%d)", attr.Policy, unix.SCHED_IDLE)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy == unix.SCHED_IDLE {
			t.Errorf("thread %d of the test process is SCHED_IDLE", tid)
		}
	}
}
