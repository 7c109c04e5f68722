package sandbox

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cradle-runtime/cradle/internal/store"
)

// TestTransitions walks every pair of states: the allowed edges succeed
// and persist, every other change is refused and leaves the record as it was.
func TestTransitions(t *testing.T) {
	states := []State{Creating, Ready, NotReady}
	allowed := map[[2]State]bool{
		{Creating, Ready}: true, {Creating, NotReady}: true, {Ready, NotReady}: true,
	}
	for _, from := range states {
		for _, to := range states {
			t.Run(fmt.Sprintf("%s-%s", from, to), func(t *testing.T) {
				sb := New(Record{ID: "s1", State: from})
				persisted := 0
				persist := func(Record) error { persisted++; return nil }
				moved, err := sb.Transition(persist, to, func(r *Record) { r.InfraPid = 7 })
				switch {
				case from == to:
					if moved || err != nil || persisted != 0 || sb.Get().InfraPid != 0 {
						t.Fatalf("self edge: moved=%v err=%v persisted=%d, want a no-op", moved, err, persisted)
					}
				case allowed[[2]State{from, to}]:
					if !moved || err != nil || persisted != 1 || sb.Get().State != to || sb.Get().InfraPid != 7 {
						t.Fatalf("moved=%v err=%v persisted=%d rec=%+v", moved, err, persisted, sb.Get())
					}
				default:
					if moved || !errors.Is(err, store.ErrIllegalTransition) || persisted != 0 || sb.Get().State != from {
						t.Fatalf("illegal edge: moved=%v err=%v persisted=%d state=%s", moved, err, persisted, sb.Get().State)
					}
					// Update cannot sneak the change past the table either.
					if err := sb.Update(persist, func(r *Record) { r.State = to }); !errors.Is(err, store.ErrIllegalTransition) {
						t.Fatalf("Update to %s: %v, want ErrIllegalTransition", to, err)
					}
				}
			})
		}
	}
}

func TestFailedPersistChangesNothing(t *testing.T) {
	sb := New(Record{ID: "s1", State: Creating})
	boom := errors.New("disk full")
	if _, err := sb.Transition(func(Record) error { return boom }, Ready, nil); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if sb.Get().State != Creating {
		t.Fatalf("state = %s after a failed persist", sb.Get().State)
	}
}
