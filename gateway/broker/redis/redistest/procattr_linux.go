//go:build linux

package redistest

import "syscall"

// procAttr makes the kernel SIGKILL redis-server if the test binary dies
// without running its cleanups (go test -timeout panics, a crash, ^C), so no
// orphan keeps the port or the CPU. Pdeathsig follows the forking OS thread
// rather than the process; the Go runtime only retires threads whose locked
// goroutine exits, which test code rarely does.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
