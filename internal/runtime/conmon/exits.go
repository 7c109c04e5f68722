package conmon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/fsnotify/fsnotify"
)

// readExit reads conmon's exit file for id; ok is false when there is none.
func readExit(dir, id string, b runtime.Bundle) (runtime.Exit, bool) {
	p := filepath.Join(dir, id)
	data, err := os.ReadFile(p)
	if err != nil {
		return runtime.Exit{}, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return runtime.Exit{}, false
	}
	fi, err := os.Stat(p)
	if err != nil {
		return runtime.Exit{}, false
	}
	return runtime.Exit{ID: id, Code: int32(code), Finished: fi.ModTime(), OOMKilled: b != "" && b.OOMKilled()}, true
}

// Exited reads the exit file; without one, a container whose conmon is
// gone and that the runtime has stopped (or forgot) will never get one,
// so its exit is concluded.
func (r *Runtime) Exited(ctx context.Context, h runtime.Handle) (runtime.Exit, bool) {
	if e, ok := readExit(r.opts.ExitDir, h.ID, h.Bundle); ok {
		return e, true
	}
	if h.Monitor.Alive() {
		return runtime.Exit{}, false
	}
	if st, err := r.State(ctx, h.ID); err == nil && st.Status != "stopped" {
		return runtime.Exit{}, false
	}
	// Check again: conmon may have written the file as it exited.
	if e, ok := readExit(r.opts.ExitDir, h.ID, h.Bundle); ok {
		return e, true
	}
	return runtime.Exit{ID: h.ID, Code: 137, Finished: time.Now(), OOMKilled: h.Bundle.OOMKilled(),
		Message: "conmon exited without recording the container's exit"}, true
}

// WatchExits calls fn for every exit file that appears in o.ExitDir; the
// bundles tell an OOM kill. The watch starts before the caller scans the
// directory, so no exit is missed.
func WatchExits(o Options, bundles runtime.Bundles, fn func(runtime.Exit)) (func(), error) {
	dir := o.ExitDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create exit dir: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch exit dir: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch exit dir %s: %w", dir, err)
	}
	go func() {
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// conmon writes a temp file and renames it: the rename
				// shows up as Create of the final name.
				if !ev.Has(fsnotify.Create) {
					continue
				}
				id := filepath.Base(ev.Name)
				if strings.Contains(id, ".") {
					continue
				}
				b, _ := bundles.For(id)
				if e, ok := readExit(dir, id, b); ok {
					fn(e)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				slog.Warn("exit watcher", "error", err)
			}
		}
	}()
	return func() { w.Close() }, nil
}

// SweepExits removes exit files of containers the daemon does not know.
func SweepExits(o Options, known func(id string) bool) {
	entries, _ := os.ReadDir(o.ExitDir)
	for _, e := range entries {
		if !known(e.Name()) {
			_ = os.Remove(filepath.Join(o.ExitDir, e.Name()))
		}
	}
}
