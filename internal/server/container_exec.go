package server

// streamState holds the CRI streaming server (exec, attach, port-forward).
type streamState struct{}

// startStreaming starts the streaming server on the configured address.
func (s *Server) startStreaming() error { return nil }

// stopStreaming stops it.
func (s *Server) stopStreaming() {}
