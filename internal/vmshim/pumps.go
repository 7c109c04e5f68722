package vmshim

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cradle-runtime/cradle/internal/agent/api"
)

// pumps copy a guest process's output from the agent into the task's
// stdout/stderr FIFOs, and the stdin FIFO to the agent.
type pumps struct {
	wg        sync.WaitGroup
	stdinOnce sync.Once
	stdin     *os.File
	a         *api.Client
	ref       api.ProcessRef
}

// openFifo opens a FIFO read-write: the shim then holds a read end of
// its own, so output written while the daemon is away (a restart) stays
// in the pipe instead of failing with EPIPE, as containerd's shims do.
func openFifo(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDWR, 0)
}

func startPumps(a *api.Client, ref api.ProcessRef, stdin, stdout, stderr string) (*pumps, error) {
	p := &pumps{a: a, ref: ref}
	for _, s := range []struct{ name, path string }{{"stdout", stdout}, {"stderr", stderr}} {
		if s.path == "" {
			continue
		}
		f, err := openFifo(s.path)
		if err != nil {
			return p, err
		}
		p.wg.Add(1)
		go p.pumpOut(s.name, f)
	}
	if stdin != "" {
		// Read-write: the open must not wait for the daemon's writer;
		// CloseIO ends the input.
		f, err := os.OpenFile(stdin, os.O_RDWR, 0)
		if err != nil {
			return p, err
		}
		p.stdin = f
		go p.pumpIn(f)
	}
	return p, nil
}

func (p *pumps) pumpOut(stream string, f *os.File) {
	defer p.wg.Done()
	defer f.Close()
	for {
		var r api.ReadOutputReply
		err := p.a.Call(context.Background(), api.MReadOutput, api.ReadOutputRequest{ProcessRef: p.ref, Stream: stream}, &r)
		if err != nil {
			slog.Debug("read output", "id", p.ref.ID, "exec", p.ref.ExecID, "stream", stream, "error", err)
			return
		}
		if len(r.Data) > 0 {
			if _, err := f.Write(r.Data); err != nil {
				slog.Warn("write output", "id", p.ref.ID, "stream", stream, "error", err)
				return
			}
		}
		if r.EOF {
			return
		}
	}
}

func (p *pumps) pumpIn(f *os.File) {
	buf := make([]byte, 32*1024)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if werr := p.a.Call(context.Background(), api.MWriteStdin, api.WriteStdinRequest{ProcessRef: p.ref, Data: buf[:n]}, nil); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.closeStdin()
}

func (p *pumps) closeStdin() {
	p.stdinOnce.Do(func() {
		_ = p.a.Call(context.Background(), api.MCloseStdin, p.ref, nil)
		if p.stdin != nil {
			p.stdin.Close()
		}
	})
}

// wait waits for the output to be copied, at most d: a child that keeps
// the streams open must not hold the exit back.
func (p *pumps) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
