// Package testutil holds the helpers that tests in several packages need
// alike, mostly to run real processes (wsgate, node, redis-server) beside
// the test. Only tests import it.
package testutil

import (
	"bytes"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/freeport"
)

// SyncBuffer collects output that other goroutines write while the test
// reads it: a child process's stdout and stderr (exec copies them from a
// goroutine of its own) or a server's log.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// for a process to listen on (freeport.Addr); another process may still
// take it first.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
