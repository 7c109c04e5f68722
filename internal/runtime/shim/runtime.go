// Package shim is the runtime backend that runs containers as tasks of
// containerd runtime v2 shims (Kata's containerd-shim-kata-v2, gVisor's
// containerd-shim-runsc-v1, containerd-shim-runc-v2), with no containerd:
// the daemon starts the shims, serves their events, and writes the CRI
// log from the stdio FIFOs it hands them.
package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	runcopts "github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/cradle-runtime/cradle/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

func init() {
	// The type URLs containerd gives these; shims decode them by URL.
	typeurl.Register(&specs.Process{}, "types.containerd.io", "opencontainers/runtime-spec", "1", "Process")
	typeurl.Register(&specs.LinuxResources{}, "types.containerd.io", "opencontainers/runtime-spec", "1", "LinuxResources")
}

// Options configure one shim handler.
type Options struct {
	// Namespace is the containerd namespace the shims are told they
	// serve; it is part of their sockets' names. Default "k8s.io".
	Namespace string
	// StateDir is the daemon's directory for the handler (such as
	// <runroot>/shims/<handler>): the events socket lives there.
	StateDir string
	// RuncOptions go to runc-based shims; nil sends none (Kata, gVisor).
	RuncOptions *RuncOptions
	// OnExit is called for each container's exit that the backend
	// learns of by itself (not for those Exited returns first).
	OnExit func(runtime.Exit)
	// Env is added to the shims' environment.
	Env []string
	// Cgroup is a cgroupfs path each new shim is moved into before it is
	// sent a task (the handler's monitor_cgroup); empty: the daemon's.
	Cgroup string
	// Features are those of the runtime the shim runs, when the daemon
	// can ask it (the runc shim's BinaryName); zero otherwise.
	Features runtime.Features
}

// RuncOptions are containerd's runc shim options.
type RuncOptions struct {
	BinaryName    string // runc binary; empty: runc in PATH
	Root          string // runc's state root
	SystemdCgroup bool
}

// Runtime is one configured handler: a shim binary.
type Runtime struct {
	name     string
	shimPath string
	opts     Options

	// legacyStart: the binary refused BootstrapParams once (a 1.x shim).
	legacyStart atomic.Bool

	ctx    context.Context // ends with Close
	cancel context.CancelFunc

	evMu   sync.Mutex
	events *ttrpc.Server

	mu     sync.Mutex
	groups map[string]*group
	ctrs   map[string]*container
}

var _ runtime.Runtime = (*Runtime)(nil)

// container is one task the backend runs.
type container struct {
	id      string
	bundle  runtime.Bundle
	pid     int // the task's init; 0 when not known
	group   *group
	io      *ctrIO    // nil when the container has no live output
	shimLog io.Closer // the bundle's log FIFO
	cfg     ioConfig

	watchCtx   context.Context
	stopWatch  context.CancelFunc
	watchOnce  sync.Once
	concludeMu sync.Mutex  // one `shim delete` at a time
	dead       atomic.Bool // the shim died and `shim delete` cleaned up

	mu     sync.Mutex
	oom    bool
	exit   *runtime.Exit
	exited chan struct{} // closed when exit is set
}

// New configures a handler. Nothing runs until the first Create or
// Restore, which start the events server.
func New(_ context.Context, name, shimPath string, o Options) *Runtime {
	if o.Namespace == "" {
		o.Namespace = "k8s.io"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{name: name, shimPath: shimPath, opts: o, ctx: ctx, cancel: cancel,
		groups: map[string]*group{}, ctrs: map[string]*container{}}
}

// Close stops serving events and drops the connections and log copiers,
// leaving shims and containers running: what the daemon's exit does. A
// new Runtime picks them up with Restore.
func (r *Runtime) Close() error {
	r.cancel()
	r.stopEvents()
	r.mu.Lock()
	ctrs := r.ctrs
	groups := r.groups
	r.ctrs, r.groups = map[string]*container{}, map[string]*group{}
	r.mu.Unlock()
	for _, c := range ctrs {
		c.release(false)
	}
	for _, g := range groups {
		g.mu.Lock()
		if g.conn != nil {
			g.conn.Close()
		}
		g.gone = true
		g.mu.Unlock()
	}
	return nil
}

// Features are what Options.Features says of the runtime below the shim:
// shims themselves say nothing of it.
func (r *Runtime) Features() runtime.Features { return r.opts.Features }

// Check reports a missing shim binary.
func (r *Runtime) Check() error {
	if _, err := exec.LookPath(r.shimPath); err != nil {
		return fmt.Errorf("shim %s: %w", r.shimPath, err)
	}
	if r.opts.StateDir == "" {
		return errors.New("shim runtime has no state directory")
	}
	return nil
}

func (r *Runtime) runcOptions() *runcopts.Options {
	o := r.opts.RuncOptions
	if o == nil {
		return nil
	}
	return &runcopts.Options{BinaryName: o.BinaryName, Root: o.Root, SystemdCgroup: o.SystemdCgroup}
}

func (r *Runtime) lookup(id string) *container {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctrs[id]
}

// known returns the container or runtime.ErrNotExist.
func (r *Runtime) known(id string) (*container, error) {
	if c := r.lookup(id); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("shim container %s: %w", id, runtime.ErrNotExist)
}

func (r *Runtime) add(c *container) {
	c.exited = make(chan struct{})
	c.watchCtx, c.stopWatch = context.WithCancel(r.ctx)
	r.mu.Lock()
	r.ctrs[c.id] = c
	r.mu.Unlock()
}

// startWatch starts the Wait fallback once.
func (r *Runtime) startWatch(c *container) {
	c.watchOnce.Do(func() { go r.watch(c) })
}

// release stops what the daemon runs for c: its Wait, output and log.
// With drain, output still due (the task ended) is read first.
func (c *container) release(drain bool) {
	c.stopWatch()
	switch {
	case c.io != nil && drain:
		c.io.drain()
	case c.io != nil:
		c.io.stop()
	}
	if c.shimLog != nil {
		c.shimLog.Close()
	}
}

// Create starts the pod's shim if needed and creates the task. The spec's
// root is already mounted, so the shim is given no rootfs mounts.
func (r *Runtime) Create(ctx context.Context, o runtime.CreateOpts) (_ *runtime.Created, retErr error) {
	if err := r.serveEvents(); err != nil {
		return nil, err
	}
	s, err := o.Bundle.ReadSpec()
	if err != nil {
		return nil, err
	}
	gid := groupID(s, o.ID)
	cfg := ioConfig{LogPath: o.LogPath, LogSizeMax: o.LogSizeMax, Stdin: o.Stdin, StdinOnce: o.StdinOnce, Terminal: o.Terminal}
	c := &container{id: o.ID, bundle: o.Bundle, cfg: cfg}
	if c.shimLog, err = openShimLog(o.Bundle, "runtime", r.name, "shim", gid, "container", o.ID); err != nil {
		return nil, err
	}
	if c.io, err = startIO(o.Bundle, cfg); err != nil {
		c.shimLog.Close()
		return nil, err
	}
	defer func() {
		if retErr != nil {
			c.io.stop()
			c.shimLog.Close()
			removeFiles(o.Bundle)
		}
	}()
	if err := writeIOConfig(o.Bundle, cfg); err != nil {
		return nil, err
	}
	g, err := r.join(ctx, gid, o.Bundle, o.ID)
	if err != nil {
		return nil, err
	}
	c.group = g
	g.mu.Lock()
	bs, task, shim := g.bs, g.task, g.shim
	g.mu.Unlock()
	if err := writeBootstrap(o.Bundle, bs); err != nil {
		r.leave(ctx, g, o.ID)
		return nil, err
	}
	var opts *anypb.Any
	if ro := r.runcOptions(); ro != nil {
		if opts, err = typeurl.MarshalAnyToProto(ro); err != nil {
			r.leave(ctx, g, o.ID)
			return nil, fmt.Errorf("encode runc options: %w", err)
		}
	}
	p := c.io.paths
	pid, err := task.Create(ctx, createReq{ID: o.ID, Bundle: o.Bundle.Dir(), Stdin: p.Stdin, Stdout: p.Stdout,
		Stderr: p.Stderr, Terminal: o.Terminal, Options: opts})
	if err != nil {
		r.leave(ctx, g, o.ID)
		return nil, rpcErr(err, "create", o.ID)
	}
	c.pid = int(pid)
	r.add(c)
	slog.Debug("shim task created", "runtime", r.name, "container", o.ID, "pid", pid, "shim", gid, "shim_pid", shim.Pid)
	return &runtime.Created{Pid: int(pid), Monitor: shim}, nil
}

// removeFiles removes what the backend put in the bundle.
func removeFiles(b runtime.Bundle) {
	pathsIn(b.Dir(), true, false).remove()
	for _, f := range []string{bootstrapFile, ioFile, shimLogFifo} {
		_ = os.Remove(b.File(f))
	}
}

// Start starts the task, then waits for its exit in the background.
func (r *Runtime) Start(ctx context.Context, id string) error {
	c, err := r.known(id)
	if err != nil {
		return err
	}
	if _, err := c.group.api().Start(ctx, id, ""); err != nil {
		return rpcErr(err, "start", id)
	}
	r.startWatch(c)
	return nil
}

// Kill signals the task's init, or all its processes.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	c, err := r.known(id)
	if err != nil {
		return err
	}
	if c.dead.Load() {
		return fmt.Errorf("shim container %s: its shim is gone: %w", id, runtime.ErrNotExist)
	}
	return rpcErr(c.group.api().Kill(ctx, id, "", uint32(sig), all), "kill", id)
}

// Delete deletes the task (killing it if it still runs), stops its I/O,
// removes the backend's files and, for the pod's last task, shuts the
// shim down.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	c := r.lookup(id)
	if c == nil {
		return nil
	}
	if !c.dead.Load() {
		if err := r.deleteTask(ctx, c); err != nil {
			return err
		}
	}
	r.mu.Lock()
	delete(r.ctrs, id)
	r.mu.Unlock()
	c.release(true)
	removeFiles(c.bundle)
	r.leave(ctx, c.group, id)
	return nil
}

func (r *Runtime) deleteTask(ctx context.Context, c *container) error {
	api := c.group.api()
	_, err := api.Delete(ctx, c.id, "")
	if err != nil && !isNotFound(err) && !isGone(err) {
		if st, serr := api.State(ctx, c.id, ""); serr == nil && st.Status != tasktypes.Status_STOPPED && st.Status != tasktypes.Status_CREATED {
			// Still running: what `runc delete --force` would do.
			_ = api.Kill(ctx, c.id, "", uint32(syscall.SIGKILL), true)
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, _ = api.Wait(wctx, c.id, "")
			cancel()
			_, err = api.Delete(ctx, c.id, "")
		}
	}
	switch {
	case err == nil || isNotFound(err):
		return nil
	case isGone(err) && !c.group.shimAlive():
		_, _ = r.concludeDead(ctx, c) // cleans up through `shim delete`
		return nil
	}
	return rpcErr(err, "delete", c.id)
}

// State asks the shim for the task's status.
func (r *Runtime) State(ctx context.Context, id string) (*runtime.State, error) {
	c, err := r.known(id)
	if err != nil {
		return nil, err
	}
	if c.dead.Load() {
		return &runtime.State{Status: "stopped"}, nil
	}
	st, err := c.group.api().State(ctx, id, "")
	if err != nil {
		return nil, rpcErr(err, "state", id)
	}
	name, err := statusName(st.Status)
	if err != nil {
		return nil, fmt.Errorf("shim state %s: %w", id, err)
	}
	return &runtime.State{Status: name, Pid: int(st.Pid)}, nil
}

func statusName(s tasktypes.Status) (string, error) {
	switch s {
	case tasktypes.Status_CREATED:
		return "created", nil
	case tasktypes.Status_RUNNING:
		return "running", nil
	case tasktypes.Status_STOPPED:
		return "stopped", nil
	case tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		return "paused", nil
	}
	return "", fmt.Errorf("task status %s", s)
}

// Update applies new resource limits.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	c, err := r.known(id)
	if err != nil {
		return err
	}
	a, err := typeurl.MarshalAnyToProto(res)
	if err != nil {
		return fmt.Errorf("encode resources: %w", err)
	}
	return rpcErr(c.group.api().Update(ctx, id, a), "update", id)
}

// ReopenLog makes the log writer open the file at the log path anew.
func (r *Runtime) ReopenLog(_ context.Context, h runtime.Handle) error {
	c, err := r.known(h.ID)
	if err != nil {
		return err
	}
	if c.io == nil {
		return fmt.Errorf("reopen log of %s: no output is being logged", h.ID)
	}
	return c.io.log.Reopen()
}
