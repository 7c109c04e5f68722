package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// DefaultNetDir is where network namespace pins go, as ip-netns(8) and CNI
// tools expect them.
const DefaultNetDir = "/var/run/netns"

// Manager owns the pin layout of one daemon: network pins in a directory
// shared with other runtimes, the other pins in a directory of its own,
// and one ownership marker per network pin, so that a sweep releases only
// the pins this daemon made.
type Manager struct {
	netDir string // network pins: <netDir>/cradle-<ID>
	dir    string // <dir>/<ID>/{ipc,uts,user,pid-holder}
	owned  string // <owned>/<ID>: this daemon made <netDir>/cradle-<ID>
}

// NewManager lays pins out under netDir and dir; markers go in ownedDir.
func NewManager(netDir, dir, ownedDir string) *Manager {
	return &Manager{netDir: netDir, dir: dir, owned: ownedDir}
}

func (m *Manager) fill(req Request) Request {
	req.NetDir, req.Dir = m.netDir, m.dir
	return req
}

// Paths is where Pin puts the pins for req, without touching anything:
// callers record it first, so a crash mid-pin leaves enough to sweep.
func (m *Manager) Paths(req Request) Pins { return PathsFor(m.fill(req)) }

// Pin marks the network pin as this daemon's, then pins the namespaces.
// On failure nothing is pinned; Release still removes the marker.
func (m *Manager) Pin(req Request) (Pins, error) {
	req = m.fill(req)
	if PathsFor(req).Net != "" {
		if err := m.own(req.ID); err != nil {
			return Pins{}, err
		}
	}
	return Pin(req)
}

// Release unpins p and, once that worked, drops sandbox id's marker.
// Idempotent.
func (m *Manager) Release(id string, p Pins) error {
	if err := UnpinAll(p); err != nil {
		return err
	}
	m.disown(id)
	return nil
}

// Sweep releases the pins and PID holders of sandboxes known reports false
// for: everything under the daemon's own directory, and network pins with
// a marker.
// Pins in the shared directory without one belong to others and stay.
func (m *Manager) Sweep(known func(id string) bool) {
	ids, err := List("", m.dir)
	if err != nil {
		slog.Warn("sweep: list pins", "error", err)
	}
	seen := map[string]bool{}
	for _, id := range append(ids, m.markers()...) {
		if seen[id] || known(id) || validID(id) != nil {
			continue
		}
		seen[id] = true
		if err := m.StopPIDHolder(id); err != nil {
			slog.Warn("sweep: stop orphaned pid holder", "sandbox", id, "error", err)
			continue
		}
		all := Request{ID: id, Kinds: append(AllKinds(), User)}
		if err := m.Release(id, m.Paths(all)); err != nil {
			slog.Warn("sweep: release orphaned pins", "sandbox", id, "error", err)
			continue
		}
		slog.Info("sweep: released orphaned pins", "sandbox", id)
	}
}

func (m *Manager) own(id string) error {
	if err := os.MkdirAll(m.owned, 0o700); err != nil {
		return fmt.Errorf("record network pin owner: %w", err)
	}
	if err := os.WriteFile(filepath.Join(m.owned, id), nil, 0o600); err != nil {
		return fmt.Errorf("record network pin owner: %w", err)
	}
	return nil
}

func (m *Manager) disown(id string) {
	if err := os.Remove(filepath.Join(m.owned, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		slog.Warn("remove network pin owner marker", "sandbox", id, "error", err)
	}
}

func (m *Manager) markers() []string {
	entries, err := os.ReadDir(m.owned)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		slog.Warn("sweep: list network pin owner markers", "error", err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}
