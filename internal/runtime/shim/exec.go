package shim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/typeurl/v2"
	"github.com/cradle-runtime/cradle/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errClientGone means writing the exec's output failed: nobody listens.
var errClientGone = errors.New("output stream closed")

// Exec runs a process in the container through the shim and waits for
// it: the container's own process settings with the exec's arguments and
// terminal, on FIFOs of its own. On timeout, on ctx's end or when the
// output can no longer be written, the process is killed before Exec
// returns. The code is the shim's: 128+signal for a killed process.
func (r *Runtime) Exec(ctx context.Context, o runtime.ExecOpts) (int, error) {
	if len(o.Args) == 0 {
		return -1, errors.New("exec: no command")
	}
	c, err := r.known(o.ID)
	if err != nil {
		return -1, err
	}
	b := o.Bundle
	if b == "" {
		b = c.bundle
	}
	var size *runtime.TermSize
	if o.Tty {
		size = runtime.FirstSize(o.Resize)
	}
	p, err := execProcess(b, o.Args, o.Tty, size)
	if err != nil {
		return -1, err
	}
	spec, err := typeurl.MarshalAnyToProto(p)
	if err != nil {
		return -1, fmt.Errorf("exec: encode process: %w", err)
	}
	execID := newExecID()
	dir := b.File("exec-" + execID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	defer os.RemoveAll(dir)
	s, err := openStdio(pathsIn(dir, o.Stdin != nil, o.Tty))
	if err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	defer s.close()

	api := c.group.api()
	// The shim's calls outlive a cancelled ctx: the process must be
	// killed and deleted whatever happens to the caller.
	bg := context.WithoutCancel(ctx)
	if err := api.Exec(bg, execReq{ID: o.ID, ExecID: execID, Stdin: s.paths.Stdin, Stdout: s.paths.Stdout,
		Stderr: s.paths.Stderr, Terminal: o.Tty, Spec: spec}); err != nil {
		return -1, rpcErr(err, "exec in", o.ID)
	}
	defer func() {
		if _, err := api.Delete(bg, o.ID, execID); err != nil && !isNotFound(err) {
			slog.Warn("delete exec process", "container", o.ID, "exec", execID, "error", err)
		}
	}()
	out := runtime.NewOutput()
	out.Copy(o.Stdout, s.stdout)
	if s.stderr != nil {
		out.Copy(o.Stderr, s.stderr)
	}
	pid, err := api.Start(bg, o.ID, execID)
	if err != nil {
		s.close() // the copiers' opens never complete without a process
		return -1, rpcErr(err, "start exec in", o.ID)
	}
	slog.Debug("exec started", "container", o.ID, "exec", execID, "pid", pid, "args", o.Args, "tty", o.Tty)
	done := make(chan struct{})
	defer close(done)
	if s.stdin != nil {
		go func() {
			_ = runtime.CopyChunks(s.stdin, o.Stdin, 32*1024)
			s.stdin.Close()
			// The shim holds the FIFO too: only CloseIO ends the input.
			if err := api.CloseIO(bg, o.ID, execID); err != nil && !isNotFound(err) {
				slog.Debug("close exec stdin", "container", o.ID, "exec", execID, "error", err)
			}
		}()
	}
	if o.Tty && o.Resize != nil {
		go resizeLoop(bg, api, o.ID, execID, o.Resize, done)
	}

	exited := make(chan exitStatus, 1)
	waitErr := make(chan error, 1)
	go func() {
		es, err := api.Wait(bg, o.ID, execID)
		if err != nil {
			waitErr <- err
			return
		}
		exited <- es
	}()
	var timer <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		timer = t.C
	}
	var cause error
	select {
	case es := <-exited:
		out.Drain(drainGrace)
		return int(es.Code), nil
	case err := <-waitErr:
		out.Stop()
		return -1, rpcErr(err, "wait for exec in", o.ID)
	case <-timer:
		cause = runtime.ErrExecTimeout
	case <-ctx.Done():
		cause = ctx.Err()
	case <-out.Gone():
		cause = errClientGone
	}
	if err := api.Kill(bg, o.ID, execID, uint32(syscall.SIGKILL), false); err != nil && !isNotFound(err) {
		slog.Warn("kill exec process", "container", o.ID, "exec", execID, "error", err)
	}
	code := -1
	select {
	case es := <-exited:
		code = int(es.Code)
	case <-waitErr:
	}
	out.Drain(drainGrace)
	return code, fmt.Errorf("exec process %d in %s killed: %w", pid, o.ID, cause)
}

// execProcess is the container's process with the exec's arguments.
func execProcess(b runtime.Bundle, args []string, tty bool, size *runtime.TermSize) (any, error) {
	spec, err := b.ReadSpec()
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if spec.Process == nil {
		return nil, errors.New("exec: container spec has no process")
	}
	p := *spec.Process
	p.Args, p.Terminal, p.ConsoleSize = args, tty, nil
	if size != nil {
		p.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
	}
	if tty && !hasEnv(p.Env, "TERM") {
		p.Env = append(append([]string{}, p.Env...), "TERM=xterm")
	}
	return &p, nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

func newExecID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// resizeLoop passes terminal sizes to the shim until done.
func resizeLoop(ctx context.Context, api taskAPI, id, execID string, sizes <-chan runtime.TermSize, done <-chan struct{}) {
	for {
		select {
		case s, ok := <-sizes:
			if !ok {
				return
			}
			if s.Width == 0 || s.Height == 0 {
				continue
			}
			if err := api.ResizePty(ctx, id, execID, uint32(s.Width), uint32(s.Height)); err != nil {
				slog.Debug("resize terminal", "container", id, "exec", execID, "error", err)
			}
		case <-done:
			return
		}
	}
}
