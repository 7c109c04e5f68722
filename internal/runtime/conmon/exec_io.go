package conmon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	"golang.org/x/sys/unix"
)

// startPipes starts a process whose stdio are pipes: the runtime passes its
// own stdio on to the process, so the pipes go straight to it.
func (r *Runtime) startPipes(dir string, o runtime.ExecOpts) (*execProc, error) {
	p := newExecProc()
	var files []*os.File // child ends, closed once the runtime exited
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var stdinR, stdinW *os.File
	if o.Stdin != nil {
		var err error
		if stdinR, stdinW, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("exec: %w", err)
		}
		files = append(files, stdinR)
	}
	var outs [2]*os.File
	for i, w := range []io.Writer{o.Stdout, o.Stderr} {
		pr, pw, err := os.Pipe()
		if err != nil {
			p.out.Close()
			if stdinW != nil {
				stdinW.Close()
			}
			return nil, fmt.Errorf("exec: %w", err)
		}
		files = append(files, pw)
		outs[i] = pw
		p.out.Copy(w, pr)
	}
	err := r.runExec(dir, o.ID, stdinR, outs[0], outs[1])
	for _, f := range files {
		f.Close()
	}
	files = nil
	pid := 0
	if err == nil {
		pid, err = readPid(dir)
	}
	if err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		p.out.Drain(drainGrace)
		return nil, err
	}
	p.pid = pid
	if stdinW != nil {
		go func() {
			_ = runtime.CopyChunks(stdinW, o.Stdin, 32*1024)
			stdinW.Close() // EOF for the process
		}()
	}
	return p, nil
}

// startTty starts a process on a new pty. The runtime sends the pty master
// over a console socket (SCM_RIGHTS).
func (r *Runtime) startTty(dir string, o runtime.ExecOpts) (*execProc, error) {
	sock := filepath.Join(dir, "console.sock")
	if len(sock) >= 108 {
		return nil, fmt.Errorf("exec: console socket path %s is too long", sock)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("exec: console socket: %w", err)
	}
	defer ln.Close()
	type result struct {
		f   *os.File
		err error
	}
	got := make(chan result, 1)
	go func() {
		f, err := recvConsole(ln)
		got <- result{f, err}
	}()
	if err := r.runExec(dir, o.ID, nil, nil, nil, "--console-socket", sock); err != nil {
		ln.Close()
		if res := <-got; res.f != nil {
			res.f.Close()
		}
		return nil, err
	}
	var res result
	select {
	case res = <-got:
	case <-time.After(10 * time.Second):
		res.err = errors.New("the runtime sent no console")
	}
	pid, err := readPid(dir)
	if err != nil {
		if res.f != nil {
			res.f.Close()
		}
		return nil, err
	}
	if res.err != nil {
		// It runs on a terminal we don't hold: end it.
		runtime.KillTree(pid)
		if runtime.WaitExited(pid) == nil {
			runtime.Reap(pid)
		}
		return nil, fmt.Errorf("exec: %w", res.err)
	}
	master := res.f
	p := newExecProc()
	p.pid = pid
	p.out.Copy(o.Stdout, master)
	if o.Stdin != nil {
		go func() {
			if runtime.CopyChunks(master, o.Stdin, 32*1024) == nil {
				// For a terminal, the end of input is the client hanging up:
				// closing the master hangs up the session, as a terminal would.
				master.Close()
			}
		}()
	}
	if o.Resize != nil {
		go func() {
			for {
				select {
				case s, ok := <-o.Resize:
					if !ok {
						return
					}
					setWinsize(master, s)
				case <-p.done:
					return
				}
			}
		}()
	}
	return p, nil
}

// recvConsole accepts the runtime's connection and receives the pty master.
func recvConsole(ln *net.UnixListener) (*os.File, error) {
	conn, err := ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("receive console: no control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("receive console: no file descriptor (%v)", err)
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	// Non-blocking, so that Go's poller serves it and Close ends a Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("receive console: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func setWinsize(f *os.File, s runtime.TermSize) {
	rc, err := f.SyscallConn() // not Fd(): that would make it blocking
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: s.Height, Col: s.Width})
	})
}

// execProc is one started exec process and its output copiers.
type execProc struct {
	pid    int
	out    *runtime.Output
	done   chan struct{} // wait returned
	exited time.Time     // when wait saw the process exit (or killed it)
}

func newExecProc() *execProc {
	return &execProc{out: runtime.NewOutput(), done: make(chan struct{})}
}

// wait waits for the process to exit, killing its tree on timeout, on
// ctx's end or when the client went away, then reaps it.
func (p *execProc) wait(ctx context.Context, timeout time.Duration) (int, error) {
	defer close(p.done)
	exited := make(chan error, 1)
	go func() { exited <- runtime.WaitExited(p.pid) }()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	var cause error
	select {
	case <-exited:
	case <-timer:
		cause = runtime.ErrExecTimeout
	case <-ctx.Done():
		cause = ctx.Err()
	case <-p.out.Gone():
		cause = errClientGone
	}
	if cause != nil {
		// The process is not reaped yet, so its PID can't be reused.
		runtime.KillTree(p.pid)
		<-exited
	}
	p.exited = time.Now()
	runtime.AdoptLeftovers(p.pid) // before the reap, while the session ID is safe
	code := runtime.Reap(p.pid)
	p.out.Drain(drainGrace)
	if cause != nil {
		return code, fmt.Errorf("exec process %d killed: %w", p.pid, cause)
	}
	return code, nil
}
