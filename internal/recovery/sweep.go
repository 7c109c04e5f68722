// Package recovery releases, at daemon start, what the host still holds
// for pods and containers no record names any more: a crash between an
// allocation and its record, or a record lost. Each kind of resource is
// released through the package that owns it.
package recovery

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/runtime/conmon"
	"github.com/cradle-runtime/cradle/internal/sandbox"
)

// Known is what the records name.
type Known struct {
	Sandboxes  map[string]bool
	Containers map[string]bool
}

// Layers is the image store's side: writable layers by container ID.
type Layers interface {
	StorageContainers() ([]string, error)
	RemoveRootfs(id string) error
}

// Owners are the packages that hold something per pod or container.
type Owners struct {
	Pins     *netns.Manager
	PodDirs  string // one directory per pod, with its shm mount
	Layers   Layers
	Bundles  runtime.Bundles
	Runtimes map[string]runtime.Runtime
	Monitor  conmon.Options // conmon's exit files
	Net      *network.Manager
}

// Sweep releases everything of the owners that k does not name. Each
// failure is logged and the sweep goes on: the next start tries again.
func Sweep(ctx context.Context, o Owners, k Known) {
	// Only pins this daemon made: /var/run/netns is shared with other
	// runtimes (and other cradles), whose pods must never be touched.
	o.Pins.Sweep(func(id string) bool { return k.Sandboxes[id] })
	sweepPodDirs(o.PodDirs, k.Sandboxes)
	if layers, err := o.Layers.StorageContainers(); err == nil {
		for _, id := range layers {
			if !k.Containers[id] {
				if err := o.Layers.RemoveRootfs(id); err != nil {
					slog.Warn("sweep: remove orphaned writable layer", "container", id, "error", err)
				}
			}
		}
	}
	sweepBundles(ctx, o, k.Containers)
	conmon.SweepExits(o.Monitor, func(id string) bool { return k.Containers[id] })
	sweepNetwork(ctx, o.Net, k.Sandboxes)
}

func sweepPodDirs(dir string, known map[string]bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := sandbox.RemoveFiles(p); err != nil {
			slog.Warn("sweep: remove orphaned pod dir", "path", p, "error", err)
		} else {
			slog.Info("sweep: removed orphaned pod dir", "path", p)
		}
	}
}

// sweepBundles deletes containers no record names from every runtime,
// then their bundles.
func sweepBundles(ctx context.Context, o Owners, known map[string]bool) {
	ids, err := o.Bundles.IDs()
	if err != nil {
		slog.Warn("sweep: list bundles", "error", err)
		return
	}
	for _, id := range ids {
		if known[id] {
			continue
		}
		b, err := o.Bundles.For(id)
		if err == nil {
			// Restore first: a backend that drives its monitor itself (a
			// shim) finds the container from its bundle only then.
			for _, rt := range o.Runtimes {
				_ = rt.Restore(ctx, runtime.Handle{ID: id, Bundle: b})
				_ = rt.Delete(ctx, id)
			}
			err = b.Remove()
		}
		if err != nil {
			slog.Warn("sweep: remove orphaned bundle", "container", id, "error", err)
		} else {
			slog.Info("sweep: removed orphaned bundle", "container", id)
		}
	}
}

// sweepNetwork releases CNI results and IPs of sandboxes no record names,
// then asks the plugins to collect whatever else is not valid.
func sweepNetwork(ctx context.Context, net *network.Manager, known map[string]bool) {
	if cached, err := net.CachedAttachments(); err == nil {
		for _, id := range cached {
			if known[id] {
				continue
			}
			if err := net.Teardown(ctx, &network.Pod{ID: id}, nil); err != nil {
				slog.Warn("sweep: CNI DEL of orphaned attachment", "sandbox", id, "error", err)
			}
		}
	}
	if net.Ready() != nil {
		return
	}
	valid := make([]string, 0, len(known))
	for id := range known {
		valid = append(valid, id)
	}
	if err := net.GC(ctx, valid); err != nil {
		slog.Debug("sweep: CNI GC", "error", err)
	}
}
