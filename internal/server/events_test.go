package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A subscriber that never reads is disconnected once its buffer is full;
// emit never waits for it, and a reading subscriber gets every event in
// order.
func TestEmitSlowSubscriber(t *testing.T) {
	s := &Server{sandboxes: store.NewIndex[*sandbox.Sandbox](), containers: store.NewIndex[*container.Container]()}
	slow, _, err := s.events.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	fast, n, err := s.events.subscribe()
	if err != nil || n != 2 {
		t.Fatalf("subscribe: %d subscribers, %v", n, err)
	}
	total := eventBuffer + 10
	got := make(chan []string)
	go func() {
		var ids []string
		for len(ids) < total {
			ids = append(ids, (<-fast.ch).GetContainerId())
		}
		got <- ids
	}()
	start := time.Now()
	s.emit(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, container.Record{ID: "infra", Infra: true})
	for i := range total {
		s.emit(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, container.Record{ID: fmt.Sprint(i), SandboxID: "gone"})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("emitting %d events took %s", total, d)
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the slow subscriber is still connected")
	}
	if status.Code(slow.why) != codes.ResourceExhausted {
		t.Errorf("slow subscriber ended with %v", slow.why)
	}
	ids := <-got
	for i, id := range ids {
		if id != fmt.Sprint(i) {
			t.Fatalf("event %d is for container %q (infra events must be skipped, order kept)", i, id)
		}
	}
	s.events.close()
	<-fast.gone
	if status.Code(fast.why) != codes.Unavailable {
		t.Errorf("shutdown ended the stream with %v", fast.why)
	}
	if _, _, err := s.events.subscribe(); status.Code(err) != codes.Unavailable {
		t.Errorf("subscribe after close: %v", err)
	}
}
