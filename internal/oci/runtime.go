// Package oci runs containers with an OCI runtime (runc or crun) under the
// conmon monitor, and builds their runtime specs.
package oci

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

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotExist means the runtime has no state for the container.
var ErrNotExist = errors.New("container does not exist in the runtime")

// Runtime is one configured OCI runtime handler.
type Runtime struct {
	Name      string // handler name
	Path      string // runc or crun binary
	Root      string // the runtime's state root
	Conmon    string
	ExitDir   string // conmon writes <ExitDir>/<id> on exit
	SocketDir string // conmon's attach socket symlinks
	// SystemdCgroup makes the runtime manage cgroups through systemd.
	SystemdCgroup bool
}

// globalArgs come before the runtime's subcommand.
func (r *Runtime) globalArgs() []string {
	args := []string{"--root", r.Root}
	if r.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

// CreateOpts describe one container to create.
type CreateOpts struct {
	ID         string
	Name       string
	Bundle     string // holds config.json; conmon's working dir and persist dir
	LogPath    string
	Terminal   bool
	Stdin      bool
	StdinOnce  bool
	LogSizeMax int64
}

// Created is what a successful create returns.
type Created struct {
	Pid         int    // the container's init
	ConmonPid   int    // the monitor
	ConmonStart uint64 // the monitor's start time, see ProcessStart
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
			return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(r.Path), args[0], ErrNotExist, msg)
		}
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(r.Path), args[0], err, msg)
	}
	return out, nil
}

// Create starts conmon, which runs `runtime create`. It returns once the
// container exists in the runtime (state "created").
func (r *Runtime) Create(ctx context.Context, o CreateOpts) (*Created, error) {
	for _, d := range []string{r.ExitDir, r.SocketDir, r.Root, filepath.Dir(o.LogPath)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	args := []string{
		"-c", o.ID, "-u", o.ID, "-n", o.Name, "-r", r.Path, "-b", o.Bundle,
		"-p", filepath.Join(o.Bundle, "pidfile"), "-P", filepath.Join(o.Bundle, "conmon-pidfile"),
		"--persist-dir", o.Bundle, "--exit-dir", r.ExitDir, "--socket-dir-path", r.SocketDir,
		"-l", "k8s-file:" + o.LogPath, "--log-level", "info", "--syslog",
		"--runtime-arg", "--root=" + r.Root,
	}
	if r.SystemdCgroup {
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

	cmd := exec.Command(r.Conmon, args...)
	cmd.Dir = o.Bundle // conmon 2.1.6 writes its oom file to its cwd
	cmd.ExtraFiles = []*os.File{syncChild, startChild}
	cmd.Env = append(os.Environ(), "_OCI_SYNCPIPE=3", "_OCI_STARTPIPE=4")
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
	// conmon waits for this byte so that it could be put in a cgroup first.
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
		c := &Created{Pid: *pid}
		if b, err := os.ReadFile(filepath.Join(o.Bundle, "conmon-pidfile")); err == nil {
			c.ConmonPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			c.ConmonStart, _ = ProcessStart(c.ConmonPid)
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

// Delete removes the runtime's state; a missing container is not an error.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	_, err := r.run(ctx, "delete", "--force", id)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	return err
}

// State is the runtime's view of one container.
type State struct {
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// State queries `runtime state`.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("decode state of %s: %w", id, err)
	}
	return &st, nil
}

// CleanupFiles removes what conmon 2.1.6 leaves behind: the exit file and
// the socket-dir symlink (newer conmons remove the latter themselves).
func (r *Runtime) CleanupFiles(id string) {
	_ = os.Remove(filepath.Join(r.ExitDir, id))
	_ = os.Remove(filepath.Join(r.SocketDir, id))
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
func ReopenLog(bundle string) error {
	f, err := os.OpenFile(filepath.Join(bundle, "ctl"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
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

// ProcessStart returns a process's start time in clock ticks (field 22 of
// /proc/PID/stat), which tells a live monitor from a reused PID.
func ProcessStart(pid int) (uint64, error) {
	st, ok := readStat(pid)
	switch {
	case !ok:
		return 0, fmt.Errorf("process %d: no readable /proc/%d/stat", pid, pid)
	case st.state == 'Z' || st.state == 'X':
		return 0, fmt.Errorf("process %d is a zombie", pid)
	}
	return st.start, nil
}

// Features is what `runtime features` says the runtime supports.
type Features struct {
	RecursiveReadOnly bool // the "rro" mount option
	IDMappedMounts    bool // idmap mount extension
}

// QueryFeatures asks the runtime binary; an old runtime without the
// features command supports neither.
func (r *Runtime) QueryFeatures(ctx context.Context) Features {
	out, err := exec.CommandContext(ctx, r.Path, "features").Output()
	if err != nil {
		return Features{}
	}
	var f struct {
		MountOptions []string `json:"mountOptions"`
		Linux        struct {
			MountExtensions struct {
				IDMap struct {
					Enabled *bool `json:"enabled"`
				} `json:"idmap"`
			} `json:"mountExtensions"`
		} `json:"linux"`
	}
	if json.Unmarshal(out, &f) != nil {
		return Features{}
	}
	var feat Features
	for _, o := range f.MountOptions {
		if o == "rro" {
			feat.RecursiveReadOnly = true
		}
	}
	if e := f.Linux.MountExtensions.IDMap.Enabled; e != nil && *e {
		feat.IDMappedMounts = true
	}
	return feat
}
