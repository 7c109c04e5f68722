package image

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.podman.io/image/v5/types"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeIO replaces the process I/O counter for one test.
func fakeIO(t *testing.T) *atomic.Uint64 {
	var n atomic.Uint64
	old := ioCounter
	ioCounter = n.Load
	t.Cleanup(func() { ioCounter = old })
	return &n
}

func TestWatchdogCancelsWithoutProgress(t *testing.T) {
	fakeIO(t)
	w := watchProgress(context.Background(), 50*time.Millisecond, quiet)
	defer w.stop()
	select {
	case <-w.ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("a pull without progress was not cancelled")
	}
	if cause := context.Cause(w.ctx); cause == nil || cause == context.Canceled {
		t.Fatalf("cause = %v, want the progress timeout", cause)
	}
}

func TestWatchdogEventsAndIOAreProgress(t *testing.T) {
	for _, tc := range []struct {
		name string
		feed func(w *watchdog, io *atomic.Uint64)
	}{
		{"events", func(w *watchdog, _ *atomic.Uint64) {
			w.events <- types.ProgressProperties{Event: types.ProgressEventRead, OffsetUpdate: 10}
		}},
		// Unpacking sends no events but moves data.
		{"io", func(_ *watchdog, io *atomic.Uint64) { io.Add(ioProgressMin) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			io := fakeIO(t)
			w := watchProgress(context.Background(), 200*time.Millisecond, quiet)
			defer w.stop()
			for range 20 { // 600ms: three timeouts' worth
				tc.feed(w, io)
				time.Sleep(30 * time.Millisecond)
				if w.ctx.Err() != nil {
					t.Fatalf("cancelled despite progress: %v", context.Cause(w.ctx))
				}
			}
		})
	}
}

func TestWatchdogSmallIOIsNoProgress(t *testing.T) {
	io := fakeIO(t)
	w := watchProgress(context.Background(), 100*time.Millisecond, quiet)
	defer w.stop()
	deadline := time.After(2 * time.Second)
	for w.ctx.Err() == nil {
		io.Add(100) // an idle daemon's own requests and logs
		select {
		case <-deadline:
			t.Fatal("trickling I/O kept a stalled pull alive")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestWatchdogZeroDisables(t *testing.T) {
	fakeIO(t)
	w := watchProgress(context.Background(), 0, quiet)
	time.Sleep(100 * time.Millisecond)
	if w.ctx.Err() != nil {
		t.Fatal("a zero timeout cancelled the pull")
	}
	w.stop()
	if w.ctx.Err() == nil {
		t.Fatal("stop did not release the context")
	}
}

func TestWatchdogCountsBytesAndBlobs(t *testing.T) {
	fakeIO(t)
	w := watchProgress(context.Background(), time.Minute, quiet)
	defer w.stop()
	w.events <- types.ProgressProperties{Event: types.ProgressEventNewArtifact}
	w.events <- types.ProgressProperties{Event: types.ProgressEventRead, OffsetUpdate: 100}
	w.events <- types.ProgressProperties{Event: types.ProgressEventDone, OffsetUpdate: 23}
	w.events <- types.ProgressProperties{Event: types.ProgressEventSkipped}
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, n := w.totals()
		if b == 123 && n == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("totals = %d bytes, %d blobs; want 123, 2", b, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProcSelfIO writes and reads back 1 MiB: the counter the progress
// watch uses must grow by at least both.
func TestProcSelfIO(t *testing.T) {
	before := procSelfIO()
	if before == 0 {
		t.Skip("/proc/self/io not readable here")
	}
	const size = 1 << 20
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	if grew := procSelfIO() - before; grew < 2*size {
		t.Fatalf("procSelfIO grew by %d bytes after writing and reading %d", grew, size)
	}
}

// final counts every event sent before it, also those still queued when
// the copy returns, so a pull's bytes are complete.
func TestWatchdogFinalCountsQueuedEvents(t *testing.T) {
	fakeIO(t)
	w := watchProgress(context.Background(), 0, quiet)
	const n = 50 // within the queue: a send never blocks here
	for range n {
		w.events <- types.ProgressProperties{Event: types.ProgressEventRead, OffsetUpdate: 7}
	}
	w.events <- types.ProgressProperties{Event: types.ProgressEventDone}
	w.events <- types.ProgressProperties{Event: types.ProgressEventSkipped}
	bytes, blobs := w.final(quiet)
	if bytes != 7*n || blobs != 2 {
		t.Fatalf("final = %d bytes, %d blobs; want %d, 2", bytes, blobs, 7*n)
	}
	// After a watchdog that gave up by itself, too.
	w = watchProgress(context.Background(), 10*time.Millisecond, quiet)
	<-w.ctx.Done()
	w.events <- types.ProgressProperties{Event: types.ProgressEventRead, OffsetUpdate: 3}
	if bytes, _ := w.final(quiet); bytes != 3 {
		t.Fatalf("final after a timeout = %d bytes, want 3", bytes)
	}
}
