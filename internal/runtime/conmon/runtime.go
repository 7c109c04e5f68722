// Package conmon is the runtime backend that runs containers with an OCI
// runtime (runc or crun) under the conmon monitor.
package conmon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options are shared by every handler of the backend.
type Options struct {
	Conmon    string
	ExitDir   string // conmon writes <ExitDir>/<id> on exit
	SocketDir string // conmon's attach socket symlinks
	// SystemdCgroup makes the runtime manage cgroups through systemd.
	SystemdCgroup bool
}

// Runtime is one configured handler: an OCI runtime binary and its state
// root, under conmon.
type Runtime struct {
	Name     string   // handler name
	Path     string   // runc or crun binary
	Root     string   // the runtime's state root
	Env      []string // added to conmon's environment (the handler's monitor_env)
	Args     []string // extra global runtime arguments (the handler's runtime_args)
	Cgroup   string   // cgroupfs path conmon is moved into (the handler's monitor_cgroup); empty: the daemon's
	opts     Options
	features runtime.Features
}

var _ runtime.Runtime = (*Runtime)(nil)

// New configures a handler and asks its binary what it supports.
func New(ctx context.Context, name, path, root string, o Options) *Runtime {
	r := &Runtime{Name: name, Path: path, Root: root, opts: o}
	r.features = runtime.QueryFeatures(ctx, path)
	return r
}

// Features is what the runtime binary said it supports.
func (r *Runtime) Features() runtime.Features { return r.features }

// Check reports a missing runtime or conmon binary.
func (r *Runtime) Check() error {
	for _, bin := range []string{r.Path, r.opts.Conmon} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
	}
	return nil
}

// globalArgs come before the runtime's subcommand.
func (r *Runtime) globalArgs() []string {
	args := append([]string{"--root", r.Root}, r.Args...)
	if r.opts.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

func (r *Runtime) run(ctx context.Context, args ...string) ([]byte, error) {
	full := append(r.globalArgs(), args...)
	cmd := exec.CommandContext(ctx, r.Path, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not exist") {
			return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(r.Path), args[0], runtime.ErrNotExist, msg)
		}
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(r.Path), args[0], err, msg)
	}
	return out, nil
}

// Create starts conmon, which runs `runtime create`. It returns once the
// container exists in the runtime (state "created").
func (r *Runtime) Create(ctx context.Context, o runtime.CreateOpts) (*runtime.Created, error) {
	for _, d := range []string{r.opts.ExitDir, r.opts.SocketDir, r.Root, filepath.Dir(o.LogPath)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	args := []string{
		"-c", o.ID, "-u", o.ID, "-n", o.Name, "-r", r.Path, "-b", o.Bundle.Dir(),
		"-p", o.Bundle.File("pidfile"), "-P", o.Bundle.File("conmon-pidfile"),
		"--persist-dir", o.Bundle.Dir(), "--exit-dir", r.opts.ExitDir, "--socket-dir-path", r.opts.SocketDir,
		"-l", "k8s-file:" + o.LogPath, "--log-level", "info", "--syslog",
		"--runtime-arg", "--root=" + r.Root,
	}
	for _, a := range r.Args {
		args = append(args, "--runtime-arg", a)
	}
	if r.opts.SystemdCgroup {
		args = append(args, "-s")
	}
	if o.LogSizeMax > 0 {
		args = append(args, "--log-size-max", strconv.FormatInt(o.LogSizeMax, 10))
	}
	if o.Terminal {
		args = append(args, "-t")
	}
	if o.Stdin {
		args = append(args, "-i")
		if !o.StdinOnce {
			args = append(args, "--leave-stdin-open")
		}
	}
	syncParent, syncChild, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sync pipe: %w", err)
	}
	defer syncParent.Close()
	startChild, startParent, err := os.Pipe() // conmon reads the start byte
	if err != nil {
		syncChild.Close()
		return nil, fmt.Errorf("start pipe: %w", err)
	}
	defer startParent.Close()

	cmd := exec.Command(r.opts.Conmon, args...)
	cmd.Dir = o.Bundle.Dir() // conmon 2.1.6 writes its oom file to its cwd
	cmd.ExtraFiles = []*os.File{syncChild, startChild}
	cmd.Env = append(append(os.Environ(), r.Env...), "_OCI_SYNCPIPE=3", "_OCI_STARTPIPE=4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		syncChild.Close()
		startChild.Close()
		return nil, fmt.Errorf("start conmon: %w", err)
	}
	syncChild.Close()
	startChild.Close()
	// conmon waits for this byte so that it can be put in a cgroup first.
	if r.Cgroup != "" {
		if err := runtime.JoinCgroup(r.Cgroup, cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("monitor cgroup for %s: %w", o.ID, err)
		}
	}
	_, _ = startParent.Write([]byte{0})
	startParent.Close()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("conmon for %s failed: %w: %s", o.ID, err, lastLines(stderr.String()))
	}

	type syncMsg struct {
		Pid     *int   `json:"pid"`
		Data    *int   `json:"data"`
		Message string `json:"message"`
	}
	msgc := make(chan syncMsg, 1)
	errc := make(chan error, 1)
	go func() {
		var m syncMsg
		if err := json.NewDecoder(syncParent).Decode(&m); err != nil {
			errc <- err
			return
		}
		msgc <- m
	}()
	timer := time.NewTimer(4 * time.Minute)
	defer timer.Stop()
	select {
	case m := <-msgc:
		pid := m.Pid
		if pid == nil {
			pid = m.Data
		}
		if pid == nil || *pid <= 0 {
			return nil, fmt.Errorf("runtime create of %s failed: %s", o.ID, strings.TrimSpace(m.Message))
		}
		c := &runtime.Created{Pid: *pid}
		if b, err := os.ReadFile(o.Bundle.File("conmon-pidfile")); err == nil {
			c.Monitor.Pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			c.Monitor.Start, _ = runtime.ProcessStart(c.Monitor.Pid)
			// conmon daemonized: it is the subreaper's child now.
			go runtime.ReapChild(c.Monitor.Pid)
		}
		return c, nil
	case err := <-errc:
		// EOF without a message: conmon died before reporting (see syslog).
		return nil, fmt.Errorf("runtime create of %s failed: conmon exited without a result (%v)", o.ID, err)
	case <-ctx.Done():
		syncParent.Close()
		return nil, fmt.Errorf("runtime create of %s: %w", o.ID, ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("runtime create of %s timed out", o.ID)
	}
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}

// Start runs `runtime start`.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, "start", id)
	return err
}

// Kill sends sig to the container's init (all processes with all=true).
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

// Delete removes the runtime's state and what conmon 2.1.6 leaves behind:
// the exit file and the socket-dir symlink (newer conmons remove the
// latter themselves). A missing container is not an error.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	if _, err := r.run(ctx, "delete", "--force", id); err != nil && !errors.Is(err, runtime.ErrNotExist) {
		return err
	}
	_ = os.Remove(filepath.Join(r.opts.ExitDir, id))
	_ = os.Remove(filepath.Join(r.opts.SocketDir, id))
	return nil
}

// State queries `runtime state`.
func (r *Runtime) State(ctx context.Context, id string) (*runtime.State, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return nil, err
	}
	var st runtime.State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("decode state of %s: %w", id, err)
	}
	return &st, nil
}

// Update applies new resource limits to a running container.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode resources: %w", err)
	}
	cmd := exec.CommandContext(ctx, r.Path, append(r.globalArgs(), "update", "--resources", "-", id)...)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s update %s: %w: %s", filepath.Base(r.Path), id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ReopenLog asks conmon to reopen the container's log file. The ctl FIFO is
// opened non-blocking: with no conmon on the other end, the open fails with
// ENXIO instead of hanging forever.
func (r *Runtime) ReopenLog(_ context.Context, h runtime.Handle) error {
	f, err := os.OpenFile(h.Bundle.File("ctl"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open conmon control fifo: %w", err)
	}
	defer f.Close()
	// One message per write: conmon 2.1.6 mishandles several in one read.
	if _, err := f.WriteString("2 0 0\n"); err != nil {
		return fmt.Errorf("write conmon control fifo: %w", err)
	}
	return nil
}

// Restore has nothing to do: conmon kept watching and logging the
// container while the daemon was away.
func (r *Runtime) Restore(context.Context, runtime.Handle) error { return nil }
