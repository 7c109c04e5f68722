package image

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/procfs"

	"go.podman.io/image/v5/types"
)

const (
	// progressLogEvery is how often a running pull logs how far it got.
	progressLogEvery = 10 * time.Second
	// ioProgressMin is the process I/O per tick that counts as progress:
	// more than an idle daemon's requests and logs, far less than unpacking.
	ioProgressMin = 256 << 10
)

// watchdog follows one pull: it logs its progress and cancels it when it
// makes none for the timeout. Transfer events are progress; so is I/O of
// this process, because unpacking a layer into the store sends no events
// but reads the downloaded layer and writes it out. (So while another pull
// makes progress, a stalled one is cancelled only once that one is done.)
type watchdog struct {
	ctx    context.Context
	events chan types.ProgressProperties
	stop   func()
	exited chan struct{} // the watching goroutine returned

	mu    sync.Mutex
	bytes uint64 // transferred so far
	blobs int    // finished (or already present)
}

// ioCounter reports bytes read and written by this process; a variable so
// tests can drive the watchdog.
var ioCounter = procSelfIO

func watchProgress(parent context.Context, timeout time.Duration, log *slog.Logger) *watchdog {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{ctx: ctx, events: make(chan types.ProgressProperties, 64), exited: make(chan struct{})}
	done := make(chan struct{})
	var once sync.Once
	// Waits for the watching goroutine: once stop returns, it reads nothing.
	w.stop = func() {
		once.Do(func() { close(done); cancel(nil) })
		<-w.exited
	}

	tick := time.Second
	if timeout > 0 && timeout/4 < tick {
		tick = max(timeout/4, time.Millisecond)
	}
	go func() {
		defer close(w.exited)
		t := time.NewTicker(tick)
		defer t.Stop()
		last, lastLog, lastIO := time.Now(), time.Now(), ioCounter()
		for {
			select {
			case <-done:
				return
			case p := <-w.events:
				last = time.Now()
				w.record(p, log)
			case now := <-t.C:
				io := ioCounter()
				if io > lastIO && io-lastIO >= ioProgressMin {
					last = now
				}
				lastIO = io
				if now.Sub(lastLog) >= progressLogEvery {
					lastLog = now
					bytes, blobs := w.totals()
					log.Info("pull in progress", "bytes", bytes, "blobs_done", blobs)
				}
				if timeout > 0 && now.Sub(last) >= timeout {
					cancel(fmt.Errorf("no pull progress for %s (image.pull_progress_timeout)", timeout))
					return
				}
			}
		}
	}()
	return w
}

func (w *watchdog) record(p types.ProgressProperties, log *slog.Logger) {
	w.mu.Lock()
	w.bytes += p.OffsetUpdate
	if p.Event == types.ProgressEventDone || p.Event == types.ProgressEventSkipped {
		w.blobs++
	}
	w.mu.Unlock()
	switch p.Event {
	case types.ProgressEventDone:
		log.Debug("blob pulled", "digest", p.Artifact.Digest.String(), "bytes", p.Offset)
	case types.ProgressEventSkipped:
		log.Debug("blob already present", "digest", p.Artifact.Digest.String())
	}
}

// final stops the watchdog and counts the events still queued: once the
// copy has returned, its totals are then complete.
func (w *watchdog) final(log *slog.Logger) (uint64, int) {
	w.stop()
	for {
		select {
		case p := <-w.events:
			w.record(p, log)
		default:
			return w.totals()
		}
	}
}

func (w *watchdog) totals() (uint64, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes, w.blobs
}

// procSelfIO sums rchar and wchar of /proc/self/io: every read and write
// of the process, pipes to the unpacking child included.
func procSelfIO() uint64 {
	p, err := procfs.Self()
	if err != nil {
		return 0
	}
	io, err := p.IO()
	if err != nil {
		return 0
	}
	return io.RChar + io.WChar
}
