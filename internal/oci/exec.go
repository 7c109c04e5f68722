package oci

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec design. Execs run as `runtime exec --detach`, not under conmon: the
// runtime exits once the process started, the process is reparented to the
// daemon (a child subreaper, see server.EnableSubreaper), and the daemon
// waits for it, times it out and reaps it itself. conmon's exec timeout has
// one-second granularity and leaves the killed process unreaped, and its
// output comes back only through a CRI log file to parse.

// ErrExecTimeout means an exec outlived its timeout and was killed.
var ErrExecTimeout = errors.New("exec timed out")

// errClientGone means writing the exec's output failed: nobody listens.
var errClientGone = errors.New("output stream closed")

const (
	// drainGrace bounds how long output is read after the exec process
	// exited, when a background child still holds its stdout open.
	drainGrace = time.Second
	// firstSizeWait is how long a tty exec waits for the client's first
	// terminal size, so the pty is created with it.
	firstSizeWait = 100 * time.Millisecond
	// ctlGap spaces writes to conmon's ctl FIFO: conmon 2.1.6 mishandles
	// several messages arriving in one read.
	ctlGap = 100 * time.Millisecond
)

// TermSize is a terminal size in character cells.
type TermSize struct{ Width, Height uint16 }

// ExecOpts describe one process to run in a running container.
type ExecOpts struct {
	ID      string
	Bundle  string // its config.json is the template for the process
	Args    []string
	Tty     bool
	Stdin   io.Reader // nil: /dev/null
	Stdout  io.Writer // nil: discarded
	Stderr  io.Writer // nil: discarded; unused with Tty
	Resize  <-chan TermSize
	Timeout time.Duration // 0: none
}

// Exec runs a process in the container and waits for it. It returns the
// exit code (128+signal when killed). On timeout, cancellation of ctx, or a
// failing output writer, the process and everything it started are killed
// and reaped before Exec returns.
func (r *Runtime) Exec(ctx context.Context, o ExecOpts) (int, error) {
	if len(o.Args) == 0 {
		return -1, errors.New("exec: no command")
	}
	if err := os.MkdirAll(r.SocketDir, 0o700); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	// Under the socket dir, not the bundle: the console socket's path must
	// fit in 108 bytes.
	dir, err := os.MkdirTemp(r.SocketDir, "exec-")
	if err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	defer os.RemoveAll(dir)
	var size *TermSize
	if o.Tty {
		size = firstSize(o.Resize)
	}
	if err := writeExecProcess(o.Bundle, dir, o.Args, o.Tty, size); err != nil {
		return -1, err
	}
	var p *execProc
	if o.Tty {
		p, err = r.startTty(dir, o)
	} else {
		p, err = r.startPipes(dir, o)
	}
	if err != nil {
		return -1, err
	}
	slog.Debug("exec started", "container", o.ID, "pid", p.pid, "args", o.Args, "tty", o.Tty)
	return p.wait(ctx, o.Timeout)
}

// firstSize waits briefly for the client's first terminal size.
func firstSize(c <-chan TermSize) *TermSize {
	if c == nil {
		return nil
	}
	t := time.NewTimer(firstSizeWait)
	defer t.Stop()
	select {
	case s, ok := <-c:
		if ok {
			return &s
		}
	case <-t.C:
	}
	return nil
}

// writeExecProcess writes process.json: the container's own process (env,
// cwd, user, capabilities, AppArmor, no_new_privileges, rlimits) with the
// exec's arguments and terminal.
func writeExecProcess(bundle, dir string, args []string, tty bool, size *TermSize) error {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return fmt.Errorf("exec: read container spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("exec: decode container spec: %w", err)
	}
	if spec.Process == nil {
		return errors.New("exec: container spec has no process")
	}
	p := *spec.Process
	p.Args, p.Terminal, p.ConsoleSize = args, tty, nil
	if tty {
		if size != nil && size.Width > 0 && size.Height > 0 {
			p.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
		}
		if !hasEnv(p.Env, "TERM") {
			p.Env = append(append([]string{}, p.Env...), "TERM=xterm")
		}
	}
	out, err := json.Marshal(&p)
	if err != nil {
		return fmt.Errorf("exec: encode process: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "process.json"), out, 0o600); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	return nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// runExec runs `runtime exec --detach`, which returns once the process
// runs. Its errors go to a JSON log, as its stderr may be the process's.
func (r *Runtime) runExec(dir, id string, stdin, stdout, stderr *os.File, extra ...string) error {
	args := []string{"--root", r.Root, "--log", filepath.Join(dir, "runtime.log"), "--log-format", "json",
		"exec", "--detach", "--pid-file", filepath.Join(dir, "pid"), "--process", filepath.Join(dir, "process.json")}
	args = append(append(args, extra...), id)
	cmd := exec.Command(r.Path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s exec in %s: %s: %w", filepath.Base(r.Path), id, runtimeError(dir), err)
	}
	return nil
}

// runtimeError is the last error the runtime logged.
func runtimeError(dir string) string {
	f, err := os.Open(filepath.Join(dir, "runtime.log"))
	if err != nil {
		return "no error logged"
	}
	defer f.Close()
	msg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Level == "error" && l.Msg != "" {
			msg = l.Msg
		}
	}
	if msg == "" {
		return "no error logged"
	}
	return msg
}

func readPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0, fmt.Errorf("exec: runtime wrote no pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("exec: bad pid file %q", b)
	}
	return pid, nil
}

// startPipes starts a process whose stdio are pipes: the runtime passes its
// own stdio on to the process, so the pipes go straight to it.
func (r *Runtime) startPipes(dir string, o ExecOpts) (*execProc, error) {
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
			p.closeAll()
			if stdinW != nil {
				stdinW.Close()
			}
			return nil, fmt.Errorf("exec: %w", err)
		}
		files = append(files, pw)
		outs[i] = pw
		p.copyOut(w, pr)
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
		p.drain()
		return nil, err
	}
	p.pid = pid
	if stdinW != nil {
		go func() {
			_ = copyChunks(stdinW, o.Stdin, 32*1024)
			stdinW.Close() // EOF for the process
		}()
	}
	return p, nil
}

// startTty starts a process on a new pty. The runtime sends the pty master
// over a console socket (SCM_RIGHTS).
func (r *Runtime) startTty(dir string, o ExecOpts) (*execProc, error) {
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
		killTree(pid)
		if waitExited(pid) == nil {
			reap(pid)
		}
		return nil, fmt.Errorf("exec: %w", res.err)
	}
	master := res.f
	p := newExecProc()
	p.pid = pid
	p.copyOut(o.Stdout, master)
	if o.Stdin != nil {
		go func() {
			if copyChunks(master, o.Stdin, 32*1024) == nil {
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

func setWinsize(f *os.File, s TermSize) {
	rc, err := f.SyscallConn() // not Fd(): that would make it blocking
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: s.Height, Col: s.Width})
	})
}

// copyChunks copies in pieces of at most size bytes and returns the read
// error (nil at EOF) or the write error.
func copyChunks(dst io.Writer, src io.Reader, size int) error {
	buf := make([]byte, size)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// execProc is one started exec process and its output copiers.
type execProc struct {
	pid     int
	out     sync.WaitGroup
	mu      sync.Mutex
	readers []*os.File    // output sources, closed to stop the copiers
	gone    chan struct{} // an output writer failed
	goneMu  sync.Once
	done    chan struct{} // wait returned
}

func newExecProc() *execProc {
	return &execProc{gone: make(chan struct{}), done: make(chan struct{})}
}

// copyOut copies src to w until EOF. When w fails, the rest is discarded
// (so the process never blocks on a full pipe) and the exec is ended.
func (p *execProc) copyOut(w io.Writer, src *os.File) {
	p.mu.Lock()
	p.readers = append(p.readers, src)
	p.mu.Unlock()
	p.out.Add(1)
	go func() {
		defer p.out.Done()
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 && w != nil {
				if _, werr := w.Write(buf[:n]); werr != nil {
					w = nil
					p.goneMu.Do(func() { close(p.gone) })
				}
			}
			if err != nil { // EOF, or EIO on a pty once the process is gone
				return
			}
		}
	}()
}

func (p *execProc) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.readers {
		f.Close()
	}
}

// drain waits for the output copiers, at most drainGrace: a background
// child may keep the output open after the process exited.
func (p *execProc) drain() {
	done := make(chan struct{})
	go func() { p.out.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainGrace):
		p.closeAll()
		<-done
	}
	p.closeAll()
}

// wait waits for the process to exit, killing its tree on timeout, on
// ctx's end or when the client went away, then reaps it.
func (p *execProc) wait(ctx context.Context, timeout time.Duration) (int, error) {
	defer close(p.done)
	exited := make(chan error, 1)
	go func() { exited <- waitExited(p.pid) }()
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
		cause = ErrExecTimeout
	case <-ctx.Done():
		cause = ctx.Err()
	case <-p.gone:
		cause = errClientGone
	}
	if cause != nil {
		// The process is not reaped yet, so its PID can't be reused.
		killTree(p.pid)
		<-exited
	}
	adoptLeftovers(p.pid) // before the reap, while the session ID is safe
	code := reap(p.pid)
	p.drain()
	if cause != nil {
		return code, fmt.Errorf("exec process %d killed: %w", p.pid, cause)
	}
	return code, nil
}

// waitExited waits until pid has exited, without reaping it. When pid is
// not our child (the daemon is not a subreaper) it polls /proc instead.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD {
			slog.Warn("exec process is not the daemon's child; its exit code is lost", "pid", pid)
			for running(pid) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		return err
	}
}

// reap collects pid's exit status: the exit code, or 128+signal.
func reap(pid int) int {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1
		}
		break
	}
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return -1
}

// procStat is what killTree needs from /proc/PID/stat.
type procStat struct {
	state           byte
	ppid, pgrp, sid int
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // comm may hold spaces and parens
	if i < 0 || i+2 >= len(s) {
		return procStat{}, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 4 {
		return procStat{}, false
	}
	st := procStat{state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.sid, _ = strconv.Atoi(f[3])
	return st, true
}

func running(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// killTree SIGKILLs an exec process and all it started. The runtime makes
// the exec a session and group leader, so one group kill gets the usual
// tree at once; processes that moved to a group of their own are found
// by session or by parentage.
func killTree(root int) {
	_ = unix.Kill(-root, unix.SIGKILL)
	_ = unix.Kill(root, unix.SIGKILL)
	for round := 0; round < 20; round++ {
		victims := execTree(root)
		if len(victims) == 0 {
			return
		}
		for _, pid := range victims {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// execTree lists the live processes in root's group or session, or below it.
func execTree(root int) []int {
	stats := map[int]procStat{}
	forEachProc(func(pid int, st procStat) { stats[pid] = st })
	var out []int
	for pid, st := range stats {
		if pid == root || st.state == 'Z' || st.state == 'X' {
			continue
		}
		if st.pgrp == root || st.sid == root || descends(stats, pid, root) {
			out = append(out, pid)
		}
	}
	return out
}

func descends(stats map[int]procStat, pid, root int) bool {
	for depth := 0; depth < 256 && pid > 1; depth++ {
		pid = stats[pid].ppid
		if pid == root {
			return true
		}
	}
	return false
}

// AttachOpts describe one attach to a container's main process.
type AttachOpts struct {
	ID        string
	Bundle    string
	Tty       bool // the container has a terminal
	StdinOnce bool // the container's stdin closes with the first client's
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	Resize    <-chan TermSize
}

// Attach connects to conmon's attach socket (SOCK_SEQPACKET: a stream
// byte, 2 stdout or 3 stderr, then up to 8192 bytes; input packets go to
// the container's stdin). It returns when the container's output ends,
// when the client ends its input, or when ctx ends.
func (r *Runtime) Attach(ctx context.Context, o AttachOpts) error {
	path := filepath.Join(r.SocketDir, o.ID, "attach")
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("attach to %s: %w", o.ID, err)
	}
	defer conn.Close()
	done := make(chan struct{})
	defer close(done)
	if o.Resize != nil {
		go resizeCtl(filepath.Join(o.Bundle, "ctl"), o.Tty, o.Resize, done)
	}
	outc := make(chan error, 1)
	go func() { outc <- attachOutput(conn, o) }()
	var inc chan error
	if o.Stdin != nil {
		inc = make(chan error, 1)
		// Each write is one packet, and conmon drops what a packet holds
		// beyond its read size (32 KiB in 2.1.6): stay well below it.
		go func() { inc <- copyChunks(conn, o.Stdin, 8192) }()
	}
	for {
		select {
		case err := <-outc:
			return err
		case err := <-inc:
			inc = nil
			if err == nil && o.StdinOnce && !o.Tty {
				// Closes the container's stdin (conmon was started without
				// --leave-stdin-open); keep the output until it ends. With
				// a terminal, conmon would close the pty master instead.
				_ = conn.CloseWrite()
				continue
			}
			return nil // the client detached
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func attachOutput(conn *net.UnixConn, o AttachOpts) error {
	buf := make([]byte, 32*1024)
	for {
		n, err := conn.Read(buf)
		if n > 1 {
			w := o.Stdout
			if buf[0] == 3 && (o.Stderr != nil || !o.Tty) {
				w = o.Stderr
			}
			if w != nil {
				if _, werr := w.Write(buf[1:n]); werr != nil {
					return nil // the client is gone
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil // conmon closed: the container exited
		}
		if err != nil {
			return fmt.Errorf("attach to %s: %w", o.ID, err)
		}
	}
}

// resizeCtl writes terminal sizes to conmon's ctl FIFO, one message per
// write, at least ctlGap apart, the newest size winning.
func resizeCtl(ctl string, tty bool, sizes <-chan TermSize, done <-chan struct{}) {
	var pending *TermSize
	var wake <-chan time.Time
	var last time.Time
	for {
		select {
		case s, ok := <-sizes:
			if !ok {
				sizes = nil
				break
			}
			if tty { // without a terminal there is nothing to resize
				pending = &s
			}
		case <-wake:
			wake = nil
		case <-done:
			return
		}
		if pending == nil {
			if sizes == nil {
				return
			}
			continue
		}
		if wake != nil {
			continue
		}
		if d := ctlGap - time.Since(last); d > 0 {
			wake = time.After(d)
			continue
		}
		if err := writeCtl(ctl, fmt.Sprintf("1 %d %d\n", pending.Height, pending.Width)); err != nil {
			slog.Debug("resize through ctl failed", "ctl", ctl, "error", err)
			return
		}
		last, pending = time.Now(), nil
	}
}

// writeCtl opens the FIFO non-blocking: with conmon gone the open fails
// (ENXIO) instead of hanging.
func writeCtl(path, msg string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Leftovers. Processes an exec leaves behind (killed or still running) are
// reparented to the nearest subreaper in their PID namespace: in a
// container's own namespace that is its init, but with the host's PID
// namespace it is the daemon. Nothing else waits for those, so a sweeper
// reaps the zombies among the daemon's children that belong to a known
// exec session (the exec process is its session leader).
var leftovers = struct {
	sync.Mutex
	sessions map[int]bool // exec session IDs with adopted processes
	sweeping bool
}{sessions: map[int]bool{}}

const sweepEvery = 2 * time.Second

// adoptLeftovers registers root's session if the daemon adopted any of
// its processes. root must be exited but not reaped yet.
func adoptLeftovers(root int) {
	self := os.Getpid()
	found := false
	forEachProc(func(pid int, st procStat) {
		if pid != root && st.sid == root && st.ppid == self {
			found = true
		}
	})
	if !found {
		return
	}
	leftovers.Lock()
	defer leftovers.Unlock()
	leftovers.sessions[root] = true
	if !leftovers.sweeping {
		leftovers.sweeping = true
		go sweepLeftovers()
	}
}

// sweepLeftovers reaps adopted zombies until no registered session has a
// process left.
func sweepLeftovers() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		if !sweepOnce() {
			return
		}
		<-t.C
	}
}

// sweepOnce reaps what it can and forgets sessions that are gone. It
// reports whether any session remains (and stops the sweeper if not).
func sweepOnce() bool {
	self := os.Getpid()
	leftovers.Lock()
	defer leftovers.Unlock()
	alive := map[int]bool{}
	forEachProc(func(pid int, st procStat) {
		if !leftovers.sessions[st.sid] || pid == st.sid {
			return // the leader is reaped by its exec's wait
		}
		alive[st.sid] = true
		if st.ppid == self && st.state == 'Z' {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	})
	for sid := range leftovers.sessions {
		if !alive[sid] {
			delete(leftovers.sessions, sid)
		}
	}
	if len(leftovers.sessions) == 0 {
		leftovers.sweeping = false
		return false
	}
	return true
}

// forEachProc calls fn for every process in /proc.
func forEachProc(fn func(pid int, st procStat)) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			fn(pid, st)
		}
	}
}
