// Package crilog writes a container's output in the CRI log format the
// kubelet reads: one record per line, `<timestamp> <stream> <F|P> <text>`,
// where F ends a line and P is a piece of a longer one. Backends whose
// monitor hands the daemon raw bytes (shims) write the log through it.
package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TimeFormat is RFC 3339 with fixed-width nanoseconds, as containerd and
// conmon write it: records sort as text.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// MaxLine is the longest text one record holds; a longer line is split
// into P records.
const MaxLine = 16 * 1024

// Stream names as the kubelet expects them.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Writer is one container's log file, shared by its streams.
type Writer struct {
	path    string
	maxSize int64 // >0: the file starts over when a record would exceed it
	now     func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (appending) or creates the log at path. maxSize > 0 bounds
// the file as conmon does: a record that would pass it starts a new,
// empty file at the same path.
func Open(path string, maxSize int64) (*Writer, error) {
	w := &Writer{path: path, maxSize: maxSize, now: time.Now}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
		return fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat container log: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Reopen closes the file and opens the one now at the path: the kubelet
// renamed the old one away (rotation), so this creates a new file.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		_ = w.f.Sync()
		w.f.Close()
		w.f = nil
	}
	return w.open()
}

// Close closes the file; later records are dropped.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Stream returns a writer for one stream (Stdout or Stderr). It is not
// safe for concurrent use; each stream has its own.
func (w *Writer) Stream(name string) *Stream {
	return &Stream{w: w, name: name}
}

// record writes one record in a single write, so records of the two
// streams never interleave.
func (w *Writer) record(stream string, partial bool, text []byte) error {
	tag := byte('F')
	if partial {
		tag = 'P'
	}
	var b bytes.Buffer
	b.Grow(len(TimeFormat) + len(stream) + len(text) + 5)
	b.WriteString(w.now().Format(TimeFormat))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteByte(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("container log is closed")
	}
	if w.maxSize > 0 && w.size+int64(b.Len()) > w.maxSize && w.size > 0 {
		if err := w.truncate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b.Bytes())
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write container log: %w", err)
	}
	return nil
}

// truncate starts the log over as conmon does at its size limit: a new
// file renamed over the old one, so a reader following the old file sees
// it rotated rather than rewritten under it.
func (w *Writer) truncate() error {
	tmp := w.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("start container log over: %w", err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("start container log over: %w", err)
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// Stream turns one stream's bytes into records. A line is held until its
// newline arrives, it reaches MaxLine, or Flush.
type Stream struct {
	w    *Writer
	name string
	buf  []byte
}

// Write takes output bytes in any chunking.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.buf = append(s.buf, p...)
			p = nil
		} else {
			line := p[:i]
			p = p[i+1:]
			if len(s.buf) > 0 {
				line = append(s.buf, line...)
			}
			s.buf = s.buf[:0]
			if err := s.emitLine(line); err != nil {
				return n, err
			}
		}
		for len(s.buf) >= MaxLine {
			if err := s.w.record(s.name, true, s.buf[:MaxLine]); err != nil {
				return n, err
			}
			s.buf = append(s.buf[:0], s.buf[MaxLine:]...)
		}
	}
	return n, nil
}

// emitLine writes a complete line, in MaxLine pieces if it is longer. A
// terminal's CR before the newline is not part of the text.
func (s *Stream) emitLine(line []byte) error {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	for len(line) > MaxLine {
		if err := s.w.record(s.name, true, line[:MaxLine]); err != nil {
			return err
		}
		line = line[MaxLine:]
	}
	return s.w.record(s.name, false, line)
}

// Flush writes a held, unterminated line as a partial record: the
// output ended without a newline.
func (s *Stream) Flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.w.record(s.name, true, s.buf)
	s.buf = s.buf[:0]
	return err
}
