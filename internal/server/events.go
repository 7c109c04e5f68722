package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventBuffer is how far a subscriber may fall behind. One that falls
// further is disconnected rather than silently missing events: the
// kubelet's evented PLEG then relists and subscribes again.
const eventBuffer = 256

// eventHub fans container events out to GetContainerEvents subscribers.
// The zero value is ready: emit runs already while New restores state.
type eventHub struct {
	mu     sync.Mutex
	subs   map[*eventSub]struct{}
	closed bool
}

type eventSub struct {
	ch   chan *runtimeapi.ContainerEventResponse
	gone chan struct{} // closed when the hub disconnects the subscriber
	why  error         // set before gone is closed
}

func (h *eventHub) subscribe() (*eventSub, int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, status.Error(codes.Unavailable, "the runtime is shutting down")
	}
	sub := &eventSub{ch: make(chan *runtimeapi.ContainerEventResponse, eventBuffer), gone: make(chan struct{})}
	if h.subs == nil {
		h.subs = map[*eventSub]struct{}{}
	}
	h.subs[sub] = struct{}{}
	return sub, len(h.subs), nil
}

func (h *eventHub) unsubscribe(sub *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
}

// drop disconnects sub; h.mu must be held.
func (h *eventHub) drop(sub *eventSub, why error) {
	delete(h.subs, sub)
	sub.why = why
	close(sub.gone)
}

// close ends every subscription, so that a graceful stop of the gRPC
// server does not wait for streams that never end by themselves.
func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.drop(sub, status.Error(codes.Unavailable, "the runtime is shutting down"))
	}
}

// emit publishes one container event; it never blocks the caller. Infra
// containers are hidden from the CRI and have no events.
func (s *Server) emit(typ runtimeapi.ContainerEventType, r container.Record) {
	if r.Infra {
		return
	}
	s.events.publish(typ, r.ID, func() *runtimeapi.ContainerEventResponse { return s.containerEvent(typ, r) })
}

// emitSandbox publishes a pod sandbox event as containerd does: the
// sandbox's ID in container_id, with the pod's status as of the event (for
// a deleted pod, its last one, so the kubelet can tell which pod is gone).
func (s *Server) emitSandbox(typ runtimeapi.ContainerEventType, r sandbox.Record) {
	s.events.publish(typ, r.ID, func() *runtimeapi.ContainerEventResponse {
		return &runtimeapi.ContainerEventResponse{
			ContainerId: r.ID, ContainerEventType: typ, CreatedAt: time.Now().UnixNano(),
			PodSandboxStatus: podSandboxStatus(r), ContainersStatuses: s.containerStatusesOf(r.ID),
		}
	})
}

// publish queues the event build makes to every subscriber. Events are
// built and queued under the hub's lock, so every subscriber sees them in
// the same order; with no subscriber nothing is built.
func (h *eventHub) publish(typ runtimeapi.ContainerEventType, id string, build func() *runtimeapi.ContainerEventResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	ev := build()
	for sub := range h.subs {
		select {
		case sub.ch <- ev:
		default:
			slog.Warn("container events subscriber fell behind; disconnecting it",
				"buffer", eventBuffer, "event", typ.String(), "container", id)
			h.drop(sub, status.Errorf(codes.ResourceExhausted,
				"subscriber fell more than %d events behind and missed events; subscribe again and relist", eventBuffer))
		}
	}
}

// containerEvent carries the pod's status as it is now. For a deleted
// container the status no longer lists it; for a pod already removed the
// status is left out, which the kubelet tolerates.
func (s *Server) containerEvent(typ runtimeapi.ContainerEventType, r container.Record) *runtimeapi.ContainerEventResponse {
	ev := &runtimeapi.ContainerEventResponse{ContainerId: r.ID, ContainerEventType: typ, CreatedAt: time.Now().UnixNano()}
	resp, err := s.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: r.SandboxID})
	if err != nil {
		slog.Debug("container event without pod status", "container", r.ID, "sandbox", r.SandboxID, "error", err)
		return ev
	}
	ev.PodSandboxStatus, ev.ContainersStatuses = resp.GetStatus(), resp.GetContainersStatuses()
	return ev
}

// GetContainerEvents streams container events until the client goes away,
// falls behind, or the runtime shuts down.
func (s *Server) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	sub, n, err := s.events.subscribe()
	if err != nil {
		return err
	}
	defer s.events.unsubscribe(sub)
	slog.Info("container events subscriber connected", "subscribers", n)
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			slog.Info("container events subscriber left")
			return nil
		case <-sub.gone:
			return sub.why
		case ev := <-sub.ch:
			if err := stream.Send(ev); err != nil {
				slog.Info("container events subscriber lost", "error", err)
				return err
			}
		}
	}
}
