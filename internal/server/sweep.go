package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/runtime/conmon"
	"github.com/cradle-runtime/cradle/internal/sandbox"
)

// sweep releases what belongs to no known sandbox or container: pins, pod
// dirs and shm mounts, writable layers, bundles, CNI results and IPs. It
// runs at start, after the records were restored.
func (s *Server) sweep(ctx context.Context) {
	known := map[string]bool{}
	for _, sb := range s.sandboxes.List() {
		known[sb.ID()] = true
	}
	// Only pins this daemon made: /var/run/netns is shared with other
	// runtimes (and other cradles), whose pods must never be touched.
	s.pins.Sweep(func(id string) bool { return known[id] })
	s.sweepDir(filepath.Join(s.cfg.RunRoot, "pods"), known, sandbox.RemoveFiles)

	knownCtr := map[string]bool{}
	for _, c := range s.containers.List() {
		knownCtr[c.Get().ID] = true
	}
	if layers, err := s.images.StorageContainers(); err == nil {
		for _, id := range layers {
			if !knownCtr[id] {
				if err := s.images.RemoveRootfs(id); err != nil {
					slog.Warn("sweep: remove orphaned writable layer", "container", id, "error", err)
				}
			}
		}
	}
	s.sweepBundles(ctx, knownCtr)
	conmon.SweepExits(s.monitor, func(id string) bool { return knownCtr[id] })

	// CNI: release results and IPs of sandboxes we no longer know.
	if cached, err := s.net.CachedAttachments(); err == nil {
		for _, id := range cached {
			if known[id] {
				continue
			}
			if err := s.net.Teardown(ctx, &network.Pod{ID: id}, nil); err != nil {
				slog.Warn("sweep: CNI DEL of orphaned attachment", "sandbox", id, "error", err)
			}
		}
	}
	valid := make([]string, 0, len(known))
	for id := range known {
		valid = append(valid, id)
	}
	if s.net.Ready() == nil {
		if err := s.net.GC(ctx, valid); err != nil {
			slog.Debug("sweep: CNI GC", "error", err)
		}
	}
}

// sweepBundles deletes containers no record names from every runtime,
// then their bundles.
func (s *Server) sweepBundles(ctx context.Context, known map[string]bool) {
	ids, err := s.bundles.IDs()
	if err != nil {
		slog.Warn("sweep: list bundles", "error", err)
		return
	}
	for _, id := range ids {
		if known[id] {
			continue
		}
		for _, rt := range s.runtimes {
			_ = rt.Delete(ctx, id)
		}
		b, err := s.bundles.For(id)
		if err == nil {
			err = b.Remove()
		}
		if err != nil {
			slog.Warn("sweep: remove orphaned bundle", "container", id, "error", err)
		} else {
			slog.Info("sweep: removed orphaned bundle", "container", id)
		}
	}
}

func (s *Server) sweepDir(dir string, known map[string]bool, remove func(string) error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		if err := remove(filepath.Join(dir, e.Name())); err != nil {
			slog.Warn("sweep: remove orphan", "path", filepath.Join(dir, e.Name()), "error", err)
		} else {
			slog.Info("sweep: removed orphan", "path", filepath.Join(dir, e.Name()))
		}
	}
}

func dirNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
