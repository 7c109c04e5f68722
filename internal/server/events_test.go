package server

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/container"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A subscriber that never reads is disconnected once its buffer is full;
// emit never waits for it, and a reading subscriber gets every event in
// order.
func TestEmitSlowSubscriber(t *testing.T) {
	s := &Server{}
	slow, _, err := s.events.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	fast, n, err := s.events.subscribe()
	if err != nil || n != 2 {
		t.Fatalf("subscribe: %d subscribers, %v", n, err)
	}
	total := eventBuffer + 10
	var read atomic.Int64
	got := make(chan []string, 1)
	go func() {
		var ids []string
		for len(ids) < total {
			select {
			case e := <-fast.ch:
				ids = append(ids, e.GetContainerId())
				read.Add(1)
			case <-fast.gone:
				got <- ids
				return
			}
		}
		got <- ids
	}()
	// Only the emits are timed. Every 64 events the test lets the reading
	// subscriber catch up, so that on a busy machine it never falls a whole
	// buffer behind (which would rightly disconnect it too); the one that
	// never reads overflows all the same.
	var emitting time.Duration
	emit := func(typ runtimeapi.ContainerEventType, r container.Record) {
		start := time.Now()
		if !r.Infra { // as emit, without a pod status to look up
			s.events.publish(typ, r.ID, func() *runtimeapi.ContainerEventResponse {
				return &runtimeapi.ContainerEventResponse{ContainerId: r.ID, ContainerEventType: typ}
			})
		}
		emitting += time.Since(start)
	}
	emit(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, container.Record{ID: "infra", Infra: true})
	for i := range total {
		emit(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, container.Record{ID: fmt.Sprint(i), SandboxID: "gone"})
		if i%64 == 63 {
			deadline := time.Now().Add(10 * time.Second)
			for read.Load() < int64(i+1) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	if emitting > 2*time.Second {
		t.Errorf("emitting %d events took %s", total, emitting)
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the slow subscriber is still connected")
	}
	if status.Code(slow.why) != codes.ResourceExhausted {
		t.Errorf("slow subscriber ended with %v", slow.why)
	}
	var ids []string
	select {
	case ids = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the reading subscriber did not get its events")
	}
	if len(ids) != total {
		t.Fatalf("the reading subscriber got %d of %d events (disconnected: %v)", len(ids), total, fast.why)
	}
	for i, id := range ids {
		if id != fmt.Sprint(i) {
			t.Fatalf("event %d is for container %q (infra events must be skipped, order kept)", i, id)
		}
	}
	s.events.close()
	select {
	case <-fast.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not end the stream")
	}
	if status.Code(fast.why) != codes.Unavailable {
		t.Errorf("shutdown ended the stream with %v", fast.why)
	}
	if _, _, err := s.events.subscribe(); status.Code(err) != codes.Unavailable {
		t.Errorf("subscribe after close: %v", err)
	}
}
