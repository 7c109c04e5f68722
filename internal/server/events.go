package server

import (
	"github.com/cradle-runtime/cradle/internal/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventHub fans container events out to GetContainerEvents subscribers.
type eventHub struct{}

// emit publishes one container event; it never blocks the caller.
func (s *Server) emit(typ runtimeapi.ContainerEventType, r container.Record) {}
