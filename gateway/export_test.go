package gateway

import "github.com/wsgate/wsgate/gateway/hub"

// Hub returns the server's channel hub (its stats, subscriber counts): for
// tests only.
func (s *Server) Hub() *hub.Hub { return s.hub }
