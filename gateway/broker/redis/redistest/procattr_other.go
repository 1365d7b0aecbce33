//go:build !linux

package redistest

import "syscall"

// procAttr: only Linux can tie the child's life to ours; elsewhere cleanup
// is the only guard.
func procAttr() *syscall.SysProcAttr { return nil }
