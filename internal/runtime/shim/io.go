package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/fifo"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/runtime/crilog"
)

// A shim hands the container's stdio to FIFOs the daemon created; unlike
// conmon it writes no log. The daemon copies the output into the CRI log
// and to attached clients.

// drainGrace bounds how long output is read once its end is due (the
// process exited), when a background child still holds it open.
const drainGrace = time.Second

// ioConfig is what the container's I/O was created with, kept in the
// bundle (io.json) for Restore.
type ioConfig struct {
	LogPath    string `json:"logPath"`
	LogSizeMax int64  `json:"logSizeMax,omitempty"`
	Stdin      bool   `json:"stdin,omitempty"`
	StdinOnce  bool   `json:"stdinOnce,omitempty"`
	Terminal   bool   `json:"terminal,omitempty"`
}

func writeIOConfig(b runtime.Bundle, c ioConfig) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode %s: %w", ioFile, err)
	}
	if err := os.WriteFile(b.File(ioFile), data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", ioFile, err)
	}
	return nil
}

func readIOConfig(b runtime.Bundle) (ioConfig, error) {
	var c ioConfig
	data, err := os.ReadFile(b.File(ioFile))
	if err != nil {
		return c, fmt.Errorf("read %s: %w", ioFile, err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("decode %s: %w", b.File(ioFile), err)
	}
	return c, nil
}

// stdioPaths are a process's FIFOs; "" for a stream it does not have.
type stdioPaths struct{ Stdin, Stdout, Stderr string }

// pathsIn names the FIFOs in dir for a process with the given streams.
func pathsIn(dir string, stdin, terminal bool) stdioPaths {
	p := stdioPaths{Stdout: dir + "/stdout"}
	if stdin {
		p.Stdin = dir + "/stdin"
	}
	if !terminal { // a terminal carries both output streams
		p.Stderr = dir + "/stderr"
	}
	return p
}

// stdio is the daemon's end of a process's FIFOs, opened before the shim
// opens its own: reads for output, a write end for stdin.
type stdio struct {
	paths  stdioPaths
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr io.ReadCloser
}

// openStdio creates (or, after a restart, reopens) the FIFOs. The opens
// complete in the background once the shim opens the other ends.
func openStdio(p stdioPaths) (*stdio, error) {
	s := &stdio{paths: p}
	var err error
	open := func(path string, flag int) io.ReadWriteCloser {
		if path == "" || err != nil {
			return nil
		}
		var f io.ReadWriteCloser
		f, err = fifo.OpenFifo(context.Background(), path, flag|syscall.O_CREAT|syscall.O_NONBLOCK, 0o700)
		if err != nil {
			err = fmt.Errorf("open fifo: %w", err)
		}
		return f
	}
	if f := open(p.Stdout, syscall.O_RDONLY); f != nil {
		s.stdout = f
	}
	if f := open(p.Stderr, syscall.O_RDONLY); f != nil {
		s.stderr = f
	}
	if f := open(p.Stdin, syscall.O_WRONLY); f != nil {
		s.stdin = f
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *stdio) close() {
	for _, c := range []io.Closer{s.stdin, s.stdout, s.stderr} {
		if c != nil {
			c.Close()
		}
	}
}

func (p stdioPaths) remove() {
	for _, f := range []string{p.Stdin, p.Stdout, p.Stderr} {
		if f != "" {
			_ = os.Remove(f)
		}
	}
}

// ctrIO is a container's stdio: the output goes to its CRI log and to
// attached clients; stdin comes from attached clients.
type ctrIO struct {
	*stdio
	log    *crilog.Writer
	fan    fanout
	copied sync.WaitGroup
	done   chan struct{} // the output ended

	inMu     sync.Mutex
	inClosed bool
}

// startIO opens the container's FIFOs and log and starts copying.
func startIO(b runtime.Bundle, c ioConfig) (*ctrIO, error) {
	s, err := openStdio(pathsIn(b.Dir(), c.Stdin, c.Terminal))
	if err != nil {
		return nil, err
	}
	log, err := crilog.Open(c.LogPath, c.LogSizeMax)
	if err != nil {
		s.close()
		return nil, err
	}
	cio := &ctrIO{stdio: s, log: log, done: make(chan struct{})}
	cio.fan.subs = map[*subscriber]struct{}{}
	cio.copy(s.stdout, crilog.Stdout, false)
	if s.stderr != nil {
		cio.copy(s.stderr, crilog.Stderr, true)
	}
	go func() {
		cio.copied.Wait()
		cio.fan.close()
		close(cio.done)
	}()
	return cio, nil
}

// copy moves one stream into the log and to the attached clients until
// its FIFO ends or is closed.
func (c *ctrIO) copy(src io.Reader, name string, isStderr bool) {
	c.copied.Add(1)
	go func() {
		defer c.copied.Done()
		stream := c.log.Stream(name)
		warned := false
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := stream.Write(buf[:n]); werr != nil && !warned {
					slog.Warn("write container log", "stream", name, "error", werr)
					warned = true
				}
				c.fan.publish(isStderr, buf[:n])
			}
			if err != nil {
				_ = stream.Flush()
				return
			}
		}
	}()
}

// writeStdin writes an attached client's input to the container.
func (c *ctrIO) writeStdin(p []byte) error {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if c.stdin == nil || c.inClosed {
		return nil // nobody reads it: drop, as a closed terminal would
	}
	_, err := c.stdin.Write(p)
	return err
}

// closeStdin ends the container's stdin for good (StdinOnce).
func (c *ctrIO) closeStdin() bool {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if c.stdin == nil || c.inClosed {
		return false
	}
	c.inClosed = true
	c.stdin.Close()
	return true
}

// drain waits a moment for the output to end, then stops the copiers.
func (c *ctrIO) drain() {
	select {
	case <-c.done:
	case <-time.After(drainGrace):
	}
	c.stop()
}

// stop closes the daemon's ends and the log.
func (c *ctrIO) stop() {
	c.inMu.Lock()
	c.inClosed = true
	c.inMu.Unlock()
	c.stdio.close()
	<-c.done
	c.log.Close()
}

// fanout passes output to attached clients. A slow client loses output
// rather than stall the container (its queue holds fanQueue chunks).
type fanout struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

const fanQueue = 256

type chunk struct {
	stderr bool
	data   []byte
}

type subscriber struct {
	ch   chan chunk
	done chan struct{} // its writer goroutine ended
}

// subscribe attaches writers; nil when the output already ended.
func (f *fanout) subscribe(stdout, stderr io.Writer) *subscriber {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	s := &subscriber{ch: make(chan chunk, fanQueue), done: make(chan struct{})}
	f.subs[s] = struct{}{}
	go func() {
		defer close(s.done)
		failed := false
		for c := range s.ch {
			w := stdout
			if c.stderr {
				w = stderr
			}
			if w == nil || failed {
				continue
			}
			if _, err := w.Write(c.data); err != nil {
				failed = true // the client is gone; keep draining
			}
		}
	}()
	return s
}

func (f *fanout) unsubscribe(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.ch)
	}
}

func (f *fanout) publish(stderr bool, p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) == 0 {
		return
	}
	data := append([]byte(nil), p...)
	for s := range f.subs {
		select {
		case s.ch <- chunk{stderr: stderr, data: data}:
		default:
			slog.Debug("attached client too slow; output dropped", "bytes", len(data))
		}
	}
}

// close ends every subscription: the output ended.
func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		delete(f.subs, s)
		close(s.ch)
	}
}
