package runtime

import (
	"io"
	"sync"
	"time"
)

// Output copies a process's output streams to a client. A client that
// fails to take them is cut off: the rest is read and discarded, so the
// process never blocks on a full pipe, and Gone tells the caller to end
// the process.
type Output struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	readers  []io.Closer
	gone     chan struct{}
	goneOnce sync.Once
}

// NewOutput returns an Output with no streams yet.
func NewOutput() *Output { return &Output{gone: make(chan struct{})} }

// Copy copies src to w until src ends (EOF, or EIO on a pty once the
// process is gone); w may be nil to discard.
func (o *Output) Copy(w io.Writer, src io.ReadCloser) {
	o.mu.Lock()
	o.readers = append(o.readers, src)
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 && w != nil {
				if _, werr := w.Write(buf[:n]); werr != nil {
					w = nil
					o.goneOnce.Do(func() { close(o.gone) })
				}
			}
			if err != nil {
				return
			}
		}
	}()
}

// Gone is closed once a client's writer failed.
func (o *Output) Gone() <-chan struct{} { return o.gone }

// Close closes every stream's source, which ends its copier.
func (o *Output) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.readers {
		r.Close()
	}
}

// Stop closes the sources and waits for the copiers.
func (o *Output) Stop() {
	o.Close()
	o.wg.Wait()
}

// Drain waits for the streams to end, at most grace (a background child
// may keep them open after the process exited), then stops the copiers.
func (o *Output) Drain(grace time.Duration) {
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
	}
	o.Stop()
}
