// Package store keeps durable, versioned records on disk. Each record is one
// JSON file written atomically (temp file, fsync, rename, fsync dir), so a
// crash leaves either the old or the new record, never a torn one.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Version is bumped whenever a record's layout changes incompatibly.
const Version = 1

type envelope struct {
	Version int             `json:"version"`
	Data    json.RawMessage `json:"data"`
}

// Dir is a directory of records, one file per ID.
type Dir struct {
	path       string
	quarantine string
}

// Open creates the directory if needed.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create record dir %s: %w", path, err)
	}
	return &Dir{path: path, quarantine: filepath.Join(filepath.Dir(path), "quarantine")}, nil
}

func (d *Dir) file(id string) string { return filepath.Join(d.path, id+".json") }

// Put writes the record for id atomically.
func (d *Dir) Put(id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", id, err)
	}
	buf, err := json.Marshal(envelope{Version: Version, Data: data})
	if err != nil {
		return fmt.Errorf("encode record %s: %w", id, err)
	}
	return WriteFileAtomic(d.file(id), buf, 0o600)
}

// Delete removes the record; a missing record is not an error.
func (d *Dir) Delete(id string) error {
	if err := os.Remove(d.file(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove record %s: %w", id, err)
	}
	return nil
}

// LoadAll decodes every record with fn. A record that cannot be read or
// decoded is moved aside into the quarantine directory and logged: one bad
// record must never stop the daemon from starting.
func (d *Dir) LoadAll(fn func(id string, data json.RawMessage) error) error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("read record dir %s: %w", d.path, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			// Leftover temp files from a crash mid-write.
			if strings.HasPrefix(name, ".tmp-") {
				_ = os.Remove(filepath.Join(d.path, name))
			}
			continue
		}
		id := strings.TrimSuffix(name, ".json")
		if err := d.loadOne(id, fn); err != nil {
			d.quarantineRecord(id, err)
		}
	}
	return nil
}

func (d *Dir) loadOne(id string, fn func(string, json.RawMessage) error) error {
	buf, err := os.ReadFile(d.file(id))
	if err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(buf, &env); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if env.Version != Version {
		return fmt.Errorf("unsupported record version %d", env.Version)
	}
	return fn(id, env.Data)
}

func (d *Dir) quarantineRecord(id string, cause error) {
	dst := filepath.Join(d.quarantine, fmt.Sprintf("%s-%s.json", id, time.Now().UTC().Format("20060102T150405")))
	if err := os.MkdirAll(d.quarantine, 0o700); err == nil {
		err = os.Rename(d.file(id), dst)
		if err == nil {
			slog.Error("quarantined unreadable record", "record", d.file(id), "moved_to", dst, "error", cause)
			return
		}
	}
	slog.Error("unreadable record could not be quarantined", "record", d.file(id), "error", cause)
}

// WriteFileAtomic writes data to path through a synced temp file and rename.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
