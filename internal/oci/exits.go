package oci

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Exit is a container's exit as conmon recorded it.
type Exit struct {
	ID       string
	Code     int32
	Finished time.Time
}

// ReadExit reads conmon's exit file for id; ok is false when there is none.
func ReadExit(dir, id string) (Exit, bool) {
	p := filepath.Join(dir, id)
	b, err := os.ReadFile(p)
	if err != nil {
		return Exit{}, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return Exit{}, false
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Exit{}, false
	}
	return Exit{ID: id, Code: int32(code), Finished: fi.ModTime()}, true
}

// WatchExits calls fn for every exit file that appears in dir. The watch
// starts before the caller scans the directory, so no exit is missed.
func WatchExits(dir string, fn func(Exit)) (func(), error) {
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
				if e, ok := ReadExit(dir, id); ok {
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
