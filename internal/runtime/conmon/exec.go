package conmon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Exec design. Execs run as `runtime exec --detach`, not under conmon: the
// runtime exits once the process started, the process is reparented to the
// daemon (a child subreaper, see runtime.EnableSubreaper), and the daemon
// waits for it, times it out and reaps it itself. conmon's exec timeout has
// one-second granularity and leaves the killed process unreaped, and its
// output comes back only through a CRI log file to parse.

// errClientGone means writing the exec's output failed: nobody listens.
var errClientGone = errors.New("output stream closed")

const (
	// drainGrace bounds how long output is read after the exec process
	// exited, when a background child still holds its stdout open.
	drainGrace = time.Second
	// ctlGap spaces writes to conmon's ctl FIFO: conmon 2.1.6 mishandles
	// several messages arriving in one read.
	ctlGap = 100 * time.Millisecond
)

// Exec runs a process in the container and waits for it. It returns the
// exit code (128+signal when killed). On timeout, cancellation of ctx, or a
// failing output writer, the process and everything it started are killed
// and reaped before Exec returns.
func (r *Runtime) Exec(ctx context.Context, o runtime.ExecOpts) (int, error) {
	if len(o.Args) == 0 {
		return -1, errors.New("exec: no command")
	}
	if err := os.MkdirAll(r.opts.SocketDir, 0o700); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	// Under the socket dir, not the bundle: the console socket's path must
	// fit in 108 bytes.
	dir, err := os.MkdirTemp(r.opts.SocketDir, "exec-")
	if err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	var size *runtime.TermSize
	if o.Tty {
		size = runtime.FirstSize(o.Resize)
	}
	if err := writeExecProcess(o.Bundle, dir, o.Args, o.Tty, size); err != nil {
		return -1, err
	}
	tPrep := time.Now()
	var p *execProc
	if o.Tty {
		p, err = r.startTty(dir, o)
	} else {
		p, err = r.startPipes(dir, o)
	}
	if err != nil {
		return -1, err
	}
	tStart := time.Now()
	slog.Debug("exec started", "container", o.ID, "pid", p.pid, "args", o.Args, "tty", o.Tty)
	code, err := p.wait(ctx, o.Timeout)
	// Where an exec's time goes: cradle's own work is prepare and finish.
	slog.Debug("exec timings", "container", o.ID, "pid", p.pid,
		"prepare", tPrep.Sub(t0).Round(time.Microsecond), "runtime", tStart.Sub(tPrep).Round(time.Microsecond),
		"run", p.exited.Sub(tStart).Round(time.Microsecond), "finish", time.Since(p.exited).Round(time.Microsecond))
	return code, err
}

// writeExecProcess writes process.json: the container's own process (env,
// cwd, user, capabilities, AppArmor, no_new_privileges, rlimits) with the
// exec's arguments and terminal.
func writeExecProcess(bundle runtime.Bundle, dir string, args []string, tty bool, size *runtime.TermSize) error {
	spec, err := bundle.ReadSpec()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
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
	args := append(r.globalArgs(), "--log", filepath.Join(dir, "runtime.log"), "--log-format", "json",
		"exec", "--detach", "--pid-file", filepath.Join(dir, "pid"), "--process", filepath.Join(dir, "process.json"))
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
