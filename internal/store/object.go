package store

import (
	"errors"
	"fmt"
	"sync"
)

// ErrIllegalTransition is returned for a state change the object's
// transition table does not allow.
var ErrIllegalTransition = errors.New("illegal state transition")

// Machine describes the states of a record type: how to read a record's
// state, and which edges between states are allowed.
type Machine[R any, S comparable] struct {
	Kind  string // "sandbox", "container": for messages
	State func(*R) *S
	Edges map[S][]S
}

// Allowed reports whether from -> to is an edge of the table.
func (m Machine[R, S]) Allowed(from, to S) bool {
	for _, s := range m.Edges[from] {
		if s == to {
			return true
		}
	}
	return false
}

func (m Machine[R, S]) check(id string, from, to S) error {
	if from == to || m.Allowed(from, to) {
		return nil
	}
	return fmt.Errorf("%w: %s %s cannot go from %v to %v", ErrIllegalTransition, m.Kind, id, from, to)
}

// Object is one persisted record: its in-memory copy, the lock that
// serialises lifecycle operations on it, and the state machine every
// change is checked against. A change reaches memory only once persisted.
type Object[R any, S comparable] struct {
	// Op serialises lifecycle operations; reads never take it, so a
	// status call never waits behind a stop in progress.
	Op sync.Mutex

	mu      sync.RWMutex
	id      string
	rec     R
	machine Machine[R, S]
	entered func(S) // called with the lock held when a state is entered
}

// NewObject wraps a record; entered, if set, is told of each state the
// record moves into.
func NewObject[R any, S comparable](id string, r R, m Machine[R, S], entered func(S)) *Object[R, S] {
	return &Object[R, S]{id: id, rec: r, machine: m, entered: entered}
}

// ID is the record's ID.
func (o *Object[R, S]) ID() string { return o.id }

// Get returns a copy of the record.
func (o *Object[R, S]) Get() R {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.rec
}

// Update changes fields of the record through persist. A state change
// made here must still be an edge of the table; on any error nothing
// changes.
func (o *Object[R, S]) Update(persist func(R) error, fn func(*R)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.commit(persist, fn)
}

// Transition moves the record to state to, applying fn with it. It
// returns false, and does not call fn, when the record already is in to;
// an edge the table lacks is ErrIllegalTransition.
func (o *Object[R, S]) Transition(persist func(R) error, to S, fn func(*R)) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	from := *o.machine.State(&o.rec)
	if from == to {
		return false, nil
	}
	if !o.machine.Allowed(from, to) {
		return false, o.machine.check(o.id, from, to)
	}
	err := o.commit(persist, func(r *R) {
		*o.machine.State(r) = to
		if fn != nil {
			fn(r)
		}
	})
	return err == nil, err
}

func (o *Object[R, S]) commit(persist func(R) error, fn func(*R)) error {
	next := o.rec
	fn(&next)
	from, to := *o.machine.State(&o.rec), *o.machine.State(&next)
	if err := o.machine.check(o.id, from, to); err != nil {
		return err
	}
	if err := persist(next); err != nil {
		return err
	}
	o.rec = next
	if from != to && o.entered != nil {
		o.entered(to)
	}
	return nil
}
