package shim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

// A group is the containers of one pod and the one shim that runs them
// all: the shim hashes the pod's ID from the spec into its socket's name,
// so `start` for the pod's later containers finds it running.
type group struct {
	id string

	mu    sync.Mutex // start, connection, membership and shutdown
	bs    bootstrap
	conn  *ttrpc.Client
	task  taskAPI
	shim  runtime.Process
	tasks map[string]bool
	gone  bool // shut down and out of the Runtime's map
	// closed is set when the connection ends; a new one is dialled (or
	// the shim started again) before the next use.
	closed bool
}

// groupID is the pod a container belongs to, from the annotations the
// shims group by; a container outside any pod has a shim of its own.
func groupID(s *specs.Spec, id string) string {
	for _, k := range []string{ocispec.AnnSandboxID, ocispec.AnnCrioSandboxID} {
		if v := s.Annotations[k]; v != "" {
			return v
		}
	}
	return id
}

func (g *group) api() taskAPI {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.task == nil {
		return deadTask{}
	}
	return g.task
}

func (g *group) shimAlive() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shim.Alive()
}

func (g *group) process() runtime.Process {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shim
}

// connect dials the shim and asks it its PID. g.mu is held.
func (r *Runtime) connect(ctx context.Context, g *group, bs bootstrap, id string) error {
	var conn *ttrpc.Client
	conn, err := dial(ctx, bs.Address, func() {
		g.mu.Lock()
		if g.conn == conn {
			g.closed = true
		}
		g.mu.Unlock()
	})
	if err != nil {
		return err
	}
	task, err := newTaskAPI(conn, bs.Version, r.opts.Namespace)
	if err != nil {
		conn.Close()
		return err
	}
	shimPid, _, err := task.Connect(ctx, id)
	if err != nil {
		conn.Close()
		return fmt.Errorf("connect to shim at %s: %w", bs.Address, err)
	}
	start, err := runtime.ProcessStart(int(shimPid))
	if err != nil {
		conn.Close()
		return fmt.Errorf("shim at %s: %w", bs.Address, err)
	}
	if g.conn != nil {
		g.conn.Close()
	}
	g.bs, g.conn, g.task, g.closed = bs, conn, task, false
	g.shim = runtime.Process{Pid: int(shimPid), Start: start}
	return nil
}

// lockGroup returns the pod's group, made if there is none, with its lock
// held; a group shut down meanwhile is left for a new one.
func (r *Runtime) lockGroup(gid string) *group {
	for {
		r.mu.Lock()
		g := r.groups[gid]
		if g == nil {
			g = &group{id: gid, tasks: map[string]bool{}}
			r.groups[gid] = g
		}
		r.mu.Unlock()
		g.mu.Lock()
		if !g.gone {
			return g
		}
		g.mu.Unlock()
	}
}

// join adds container id to its pod's group, starting the pod's shim from
// the container's bundle when there is none to talk to.
func (r *Runtime) join(ctx context.Context, gid string, b runtime.Bundle, id string) (*group, error) {
	g := r.lockGroup(gid)
	if g.task == nil || g.closed {
		bs, err := r.startShim(ctx, b, id)
		if err == nil {
			old := g.shim
			if err = r.connect(ctx, g, bs, id); err == nil && g.shim != old {
				// The start process exited: a new shim is our child.
				go runtime.ReapChild(g.shim.Pid)
				if r.opts.Cgroup != "" {
					// Before its first task, so runc starts there too.
					err = runtime.JoinCgroup(r.opts.Cgroup, g.shim.Pid)
				}
			}
		}
		if err != nil {
			if g.task == nil {
				r.killUnreachableShim(b)
			}
			r.dropIfEmpty(g)
			g.mu.Unlock()
			return nil, err
		}
		slog.Debug("shim ready", "runtime", r.name, "shim", gid, "address", g.bs.Address,
			"api", g.bs.Version, "pid", g.shim.Pid)
	}
	g.tasks[id] = true
	g.mu.Unlock()
	return g, nil
}

// redial reconnects to a running shim whose connection dropped.
func (r *Runtime) redial(ctx context.Context, g *group) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed || g.gone {
		return nil
	}
	for id := range g.tasks {
		return r.connect(ctx, g, g.bs, id)
	}
	return nil
}

// leave removes id from its group; the last one out shuts the shim down.
func (r *Runtime) leave(ctx context.Context, g *group, id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.tasks, id)
	if len(g.tasks) > 0 {
		return
	}
	if g.closed && g.shim.Alive() {
		// Only the connection was lost: the shim must still be told.
		if err := r.connect(ctx, g, g.bs, id); err != nil {
			slog.Warn("reconnect to shim to shut it down", "runtime", r.name, "shim", g.id, "error", err)
		}
	}
	if g.task != nil && !g.closed {
		// A shim may close the connection as its answer.
		if err := g.task.Shutdown(ctx, id); err != nil && !errors.Is(err, ttrpc.ErrClosed) {
			slog.Warn("shut down shim", "runtime", r.name, "shim", g.id, "error", err)
		}
	}
	if g.conn != nil {
		g.conn.Close()
	}
	// Give the shim a moment to exit and remove its socket; one that was
	// killed leaves the socket behind.
	for deadline := time.Now().Add(2 * time.Second); g.shim.Alive() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !g.shim.Alive() {
		if p := socketPath(g.bs.Address); p != "" {
			_ = os.Remove(p)
		}
	}
	r.dropIfEmpty(g)
}

// dropIfEmpty forgets a group without members. g.mu is held.
func (r *Runtime) dropIfEmpty(g *group) {
	if len(g.tasks) > 0 {
		return
	}
	g.gone = true
	r.mu.Lock()
	if r.groups[g.id] == g {
		delete(r.groups, g.id)
	}
	r.mu.Unlock()
}

// deadTask answers for a group with no connection.
type deadTask struct{}

var errNoShim = fmt.Errorf("no connection to the shim: %w", ttrpc.ErrClosed)

func (deadTask) Create(context.Context, createReq) (uint32, error)     { return 0, errNoShim }
func (deadTask) Start(context.Context, string, string) (uint32, error) { return 0, errNoShim }
func (deadTask) State(context.Context, string, string) (taskState, error) {
	return taskState{}, errNoShim
}
func (deadTask) Kill(context.Context, string, string, uint32, bool) error { return errNoShim }
func (deadTask) Delete(context.Context, string, string) (exitStatus, error) {
	return exitStatus{}, errNoShim
}
func (deadTask) Exec(context.Context, execReq) error                             { return errNoShim }
func (deadTask) ResizePty(context.Context, string, string, uint32, uint32) error { return errNoShim }
func (deadTask) CloseIO(context.Context, string, string) error                   { return errNoShim }
func (deadTask) Update(context.Context, string, *anypb.Any) error                { return errNoShim }
func (deadTask) Wait(context.Context, string, string) (exitStatus, error) {
	return exitStatus{}, errNoShim
}
func (deadTask) Connect(context.Context, string) (uint32, uint32, error) { return 0, 0, errNoShim }
func (deadTask) Shutdown(context.Context, string) error                  { return errNoShim }

// killUnreachableShim ends a shim that started but could not be talked
// to, so it does not linger without tasks. Only 1.x shims record their
// PID (shim.pid); the command line tells it is one of ours.
func (r *Runtime) killUnreachableShim(b runtime.Bundle) {
	data, err := os.ReadFile(b.File("shim.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && strings.Contains(string(cmd), r.grpcAddress()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		slog.Warn("killed a shim that could not be reached", "runtime", r.name, "pid", pid)
	}
}
