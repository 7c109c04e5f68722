package server

// statsCache holds periodically collected container and pod stats.
type statsCache struct{}

// startStats starts the collection loop.
func (s *Server) startStats() {}

// stopStats stops it.
func (s *Server) stopStats() {}
