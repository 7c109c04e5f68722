package container

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cradle-runtime/cradle/internal/store"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	created = runtimeapi.ContainerState_CONTAINER_CREATED
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
)

// TestTransitions walks every pair of states; Exited closes exactly when
// the container enters EXITED.
func TestTransitions(t *testing.T) {
	states := []runtimeapi.ContainerState{created, running, exited}
	allowed := map[[2]runtimeapi.ContainerState]bool{
		{created, running}: true, {created, exited}: true, {running, exited}: true,
	}
	persist := func(Record) error { return nil }
	for _, from := range states {
		for _, to := range states {
			t.Run(fmt.Sprintf("%s-%s", from, to), func(t *testing.T) {
				c := New(Record{ID: "c1", State: from})
				moved, err := c.Transition(persist, to, func(r *Record) { r.ExitCode = 3 })
				switch {
				case from == to:
					if moved || err != nil || c.Get().ExitCode != 0 {
						t.Fatalf("self edge: moved=%v err=%v", moved, err)
					}
				case allowed[[2]runtimeapi.ContainerState{from, to}]:
					if !moved || err != nil || c.Get().State != to || c.Get().ExitCode != 3 {
						t.Fatalf("moved=%v err=%v rec=%+v", moved, err, c.Get())
					}
				default:
					if moved || !errors.Is(err, store.ErrIllegalTransition) || c.Get().State != from {
						t.Fatalf("illegal edge: moved=%v err=%v state=%s", moved, err, c.Get().State)
					}
				}
				select {
				case <-c.Exited():
					if c.Get().State != exited {
						t.Fatalf("Exited closed in state %s", c.Get().State)
					}
				default:
					if c.Get().State == exited {
						t.Fatal("Exited not closed in EXITED")
					}
				}
			})
		}
	}
}
