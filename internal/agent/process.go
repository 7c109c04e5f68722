package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// maxBuffered bounds a stream's unread output; past it the process's
// writes block, as on a full pipe, until the host reads.
const maxBuffered = 1 << 20

// stream is a process's output, buffered until the host reads it.
type stream struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	eof  bool
}

func newStream() *stream {
	s := &stream{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// fill copies r into the buffer until EOF, then closes it.
func (s *stream) fill(r io.ReadCloser) {
	defer r.Close()
	chunk := make([]byte, 32*1024)
	for {
		n, err := r.Read(chunk)
		s.mu.Lock()
		for n > 0 && len(s.buf) >= maxBuffered && !s.eof {
			s.cond.Wait()
		}
		s.buf = append(s.buf, chunk[:n]...)
		if err != nil {
			s.eof = true
		}
		s.cond.Broadcast()
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// read returns what is buffered, waiting for data or EOF (or ctx's end).
func (s *stream) read(ctx context.Context) ([]byte, bool, error) {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) == 0 && !s.eof {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		s.cond.Wait()
	}
	data := s.buf
	s.buf = nil
	s.cond.Broadcast()
	return data, s.eof && len(data) == 0, nil
}

// proc is a process the agent started.
type proc struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *stream
	done           chan struct{}
	status         int
	exitedAt       time.Time
}

// startProc starts cmd with its stdio piped to the agent.
func startProc(cmd *exec.Cmd, withStdin bool) (*proc, error) {
	p := &proc{cmd: cmd, stdout: newStream(), stderr: newStream(), done: make(chan struct{})}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if withStdin {
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		p.stdin = in
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go p.stdout.fill(outR)
	go p.stderr.fill(errR)
	go func() {
		err := cmd.Wait()
		p.status = exitStatus(cmd.ProcessState, err)
		p.exitedAt = time.Now()
		close(p.done)
	}()
	return p, nil
}

// exitStatus is the shell's code: 128+signal for a killed process.
func exitStatus(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 255
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || err == nil {
		return ps.ExitCode()
	}
	return 255
}

func (p *proc) wait(ctx context.Context) (int, time.Time, error) {
	select {
	case <-p.done:
		return p.status, p.exitedAt, nil
	case <-ctx.Done():
		return 0, time.Time{}, ctx.Err()
	}
}
