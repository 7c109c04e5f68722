package shim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/cradle-runtime/cradle/internal/runtime"
)

// Restore reconnects to a container's shim after a daemon restart: from
// the bundle's bootstrap.json, through the (new) events server, and
// resumes its log for a container still running. Output written while
// the daemon was away waited in the FIFOs. An unreachable shim is left
// for Exited to conclude.
func (r *Runtime) Restore(ctx context.Context, h runtime.Handle) error {
	if r.lookup(h.ID) != nil {
		return nil
	}
	if err := r.serveEvents(); err != nil {
		return err
	}
	bs, err := readBootstrap(h.Bundle)
	if errors.Is(err, os.ErrNotExist) {
		return nil // the create never reached a shim
	}
	if err != nil {
		return err
	}
	s, err := h.Bundle.ReadSpec()
	if err != nil {
		return err
	}
	gid := groupID(s, h.ID)
	cfg, err := readIOConfig(h.Bundle)
	if err != nil {
		slog.Warn("restore: no record of the container's I/O", "runtime", r.name, "container", h.ID, "error", err)
	}
	if h.LogPath != "" {
		cfg.LogPath = h.LogPath
	}
	c := &container{id: h.ID, bundle: h.Bundle, cfg: cfg}
	if c.shimLog, err = openShimLog(h.Bundle, "runtime", r.name, "shim", gid, "container", h.ID); err != nil {
		slog.Warn("restore: shim log", "runtime", r.name, "container", h.ID, "error", err)
	}
	c.group = r.rejoin(ctx, gid, bs, h)
	st, err := c.group.api().State(ctx, h.ID, "")
	c.pid = int(st.Pid)
	if err == nil && st.Status != tasktypes.Status_STOPPED && cfg.LogPath != "" {
		if c.io, err = startIO(h.Bundle, cfg); err != nil {
			slog.Warn("restore: container output", "runtime", r.name, "container", h.ID, "error", err)
		}
	}
	r.add(c)
	if err != nil {
		slog.Info("restore: shim does not answer; its exit will be concluded", "runtime", r.name,
			"container", h.ID, "error", err)
		return nil
	}
	if st.Status != tasktypes.Status_STOPPED {
		r.startWatch(c)
	}
	return nil
}

// rejoin adds a restored container to its group, connecting to the shim
// the first time. A shim that cannot be reached leaves the group without
// a connection, the handle's monitor standing for the shim.
func (r *Runtime) rejoin(ctx context.Context, gid string, bs bootstrap, h runtime.Handle) *group {
	g := r.lockGroup(gid)
	if g.task == nil || g.closed {
		if err := r.connect(ctx, g, bs, h.ID); err != nil {
			slog.Debug("restore: connect to shim", "runtime", r.name, "shim", gid, "error", err)
			g.bs, g.closed = bs, true
			if g.shim.Pid == 0 {
				g.shim = h.Monitor
			}
		}
	}
	g.tasks[h.ID] = true
	g.mu.Unlock()
	return g
}

// Exited reports the container's exit once there is one: one the backend
// learned, or the shim's STOPPED state. When the shim is gone for good,
// its delete command cleans up and gives the exit.
func (r *Runtime) Exited(ctx context.Context, h runtime.Handle) (runtime.Exit, bool) {
	c := r.lookup(h.ID)
	if c == nil {
		if _, err := os.Stat(h.Bundle.File(bootstrapFile)); err == nil {
			if err := r.Restore(ctx, h); err != nil {
				slog.Warn("exited: restore", "runtime", r.name, "container", h.ID, "error", err)
			}
			c = r.lookup(h.ID)
		}
	}
	if c == nil {
		if h.Monitor.Alive() {
			return runtime.Exit{}, false
		}
		return runtime.Exit{ID: h.ID, Code: 137, Finished: time.Now(), OOMKilled: h.Bundle.OOMKilled(),
			Message: "no shim has the container"}, true
	}
	if e, ok := c.recorded(); ok {
		return e, true
	}
	st, err := c.group.api().State(ctx, h.ID, "")
	switch {
	case err == nil && st.Status == tasktypes.Status_STOPPED:
		return r.recordExit(c, runtime.Exit{Code: int32(st.Exit.Code), Finished: st.Exit.At}, false, "state"), true
	case err == nil:
		return runtime.Exit{}, false
	case isNotFound(err):
		// The shim lost the task: another one replaced a dead shim.
	case isGone(err) && !c.group.shimAlive():
	case isGone(err):
		if err := r.redial(ctx, c.group); err != nil {
			slog.Debug("reconnect to shim", "runtime", r.name, "shim", c.group.id, "error", err)
		}
		return runtime.Exit{}, false
	default:
		return runtime.Exit{}, false
	}
	e, _ := r.concludeDead(ctx, c)
	return e, true
}

// concludeDead runs the shim's delete command for a container whose shim
// died: it kills what is left of the container, unmounts and removes the
// runtime's state and reports the exit. The shim's socket file stays
// behind; it is removed here. fresh is false when an exit was already
// recorded (that one stands).
func (r *Runtime) concludeDead(ctx context.Context, c *container) (e runtime.Exit, fresh bool) {
	c.concludeMu.Lock()
	defer c.concludeMu.Unlock()
	if c.dead.Load() {
		e, _ = c.recorded()
		return e, false
	}
	_, had := c.recorded()
	es, err := r.deleteShim(ctx, c.bundle, c.id)
	if err != nil {
		slog.Warn("shim delete failed", "runtime", r.name, "container", c.id, "error", err)
		e = runtime.Exit{Code: 137, Message: fmt.Sprintf("the shim died and its delete command failed: %v", err)}
	} else {
		e = runtime.Exit{Code: int32(es.Code), Finished: es.At, Message: "the shim died; its delete command reported the exit"}
	}
	c.dead.Store(true)
	// The container's init outlived its shim, so the daemon, as the
	// subreaper, inherited it, and the delete command just killed it.
	if pid := c.initPid(); pid > 0 {
		go reapZombie(func(p int, _ string) bool { return p == pid })
	}
	g := c.group
	g.mu.Lock()
	if !g.shim.Alive() {
		if p := socketPath(g.bs.Address); p != "" {
			_ = os.Remove(p)
		}
	}
	g.mu.Unlock()
	slog.Info("shim died; container exit concluded", "runtime", r.name, "container", c.id, "exit_code", e.Code)
	return r.recordExit(c, e, false, "shim delete"), !had
}

// initPid is the task's PID: from the create, else from the init.pid file
// runc shims write in the bundle.
func (c *container) initPid() int {
	if c.pid > 0 {
		return c.pid
	}
	data, err := os.ReadFile(c.bundle.File("init.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}
