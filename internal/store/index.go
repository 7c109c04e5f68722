package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ErrNotFound and ErrAmbiguous are returned by Index lookups.
var (
	ErrNotFound  = errors.New("not found")
	ErrAmbiguous = errors.New("ambiguous ID prefix")
)

// Index maps full IDs to objects and resolves unique ID prefixes, the way
// crictl passes truncated IDs.
type Index[T any] struct {
	mu   sync.RWMutex
	byID map[string]T
}

// NewIndex returns an empty index.
func NewIndex[T any]() *Index[T] { return &Index[T]{byID: map[string]T{}} }

// Add stores v under id.
func (x *Index[T]) Add(id string, v T) {
	x.mu.Lock()
	x.byID[id] = v
	x.mu.Unlock()
}

// Delete forgets id.
func (x *Index[T]) Delete(id string) {
	x.mu.Lock()
	delete(x.byID, id)
	x.mu.Unlock()
}

// Get resolves a full ID or a unique prefix.
func (x *Index[T]) Get(idOrPrefix string) (T, error) {
	var zero T
	if idOrPrefix == "" {
		return zero, fmt.Errorf("empty ID: %w", ErrNotFound)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if v, ok := x.byID[idOrPrefix]; ok {
		return v, nil
	}
	var found []string
	for id := range x.byID {
		if strings.HasPrefix(id, idOrPrefix) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return zero, fmt.Errorf("%q: %w", idOrPrefix, ErrNotFound)
	case 1:
		return x.byID[found[0]], nil
	}
	return zero, fmt.Errorf("%q matches %d IDs: %w", idOrPrefix, len(found), ErrAmbiguous)
}

// List returns every object, sorted by ID for stable output.
func (x *Index[T]) List() []T {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ids := make([]string, 0, len(x.byID))
	for id := range x.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		out = append(out, x.byID[id])
	}
	return out
}

// Names reserves unique names for IDs.
type Names struct {
	mu     sync.Mutex
	byName map[string]string
}

// NewNames returns an empty registrar.
func NewNames() *Names { return &Names{byName: map[string]string{}} }

// Reserve claims name for id. It fails with the holder's ID when taken.
func (n *Names) Reserve(name, id string) (holder string, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h, taken := n.byName[name]; taken && h != id {
		return h, false
	}
	n.byName[name] = id
	return id, true
}

// Release frees name if id holds it.
func (n *Names) Release(name, id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byName[name] == id {
		delete(n.byName, name)
	}
}

// Lookup returns the ID holding name.
func (n *Names) Lookup(name string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id, ok := n.byName[name]
	return id, ok
}
