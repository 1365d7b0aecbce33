package gateway

import "github.com/wsgate/wsgate/gateway/hub"

// Hub returns the server's channel hub (its stats, subscriber counts): for
// tests only.
func (s *Server) Hub() *hub.Hub { return s.hub }

// LockConns holds every connection's lock until the returned func is
// called, so a test can play a busy gateway: a dispatch that starts
// meanwhile (a timer, a read) waits for the lock. For tests only.
func (s *Server) LockConns() (unlock func()) {
	conns := s.index.all()
	for _, c := range conns {
		c.mu.Lock()
	}
	return func() {
		for _, c := range conns {
			c.mu.Unlock()
		}
	}
}
