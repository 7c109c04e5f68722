package shim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	eventtypes "github.com/containerd/containerd/api/events" // also registers the event types for typeurl
	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Exits reach the backend three ways: the shim's /tasks/exit event, a
// Wait call per task (events are dropped after about 15 s of retries, and
// a shim started with another events address sends them elsewhere), and
// Exited, which reconciles. The first to know records the exit; OnExit
// sees each container's exit once.

// waitGrace is how long an exit learned from Wait waits for the event:
// the shim queues /tasks/oom before /tasks/exit, and only the event path
// is ordered after it.
const waitGrace = time.Second

// eventsPath is the socket shims publish to (TTRPC_ADDRESS). It is fixed,
// so shims started before a daemon restart find the new server.
func (r *Runtime) eventsPath() string { return filepath.Join(r.opts.StateDir, "events.sock") }

// serveEvents starts the events server once per Runtime.
func (r *Runtime) serveEvents() error {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	if r.events != nil {
		return nil
	}
	if r.ctx.Err() != nil {
		return errors.New("shim runtime is closed")
	}
	if err := os.MkdirAll(r.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("create shim state dir: %w", err)
	}
	p := r.eventsPath()
	// Left by a daemon that did not shut down cleanly.
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale events socket: %w", err)
	}
	l, err := net.Listen("unix", p)
	if err != nil {
		return fmt.Errorf("listen for shim events: %w", err)
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		l.Close()
		return fmt.Errorf("shim events server: %w", err)
	}
	eventsapi.RegisterTTRPCEventsService(srv, eventService{r})
	go func() {
		if err := srv.Serve(r.ctx, l); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
			slog.Error("shim events server stopped", "runtime", r.name, "error", err)
		}
	}()
	r.events = srv
	return nil
}

func (r *Runtime) stopEvents() {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	if r.events != nil {
		r.events.Close()
		_ = os.Remove(r.eventsPath())
	}
}

type eventService struct{ r *Runtime }

// Forward receives every event a shim publishes; only exits of a task's
// init and OOM kills matter here.
func (s eventService) Forward(_ context.Context, req *eventsapi.ForwardRequest) (*emptypb.Empty, error) {
	env := req.GetEnvelope()
	if env == nil || env.Event == nil {
		return &emptypb.Empty{}, nil
	}
	if env.Namespace != "" && env.Namespace != s.r.opts.Namespace {
		return &emptypb.Empty{}, nil
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		slog.Debug("undecodable shim event", "runtime", s.r.name, "topic", env.Topic, "error", err)
		return &emptypb.Empty{}, nil
	}
	switch e := v.(type) {
	case *eventtypes.TaskExit:
		if e.ID != e.ContainerID { // an exec's exit: Exec waits for it itself
			return &emptypb.Empty{}, nil
		}
		if c := s.r.lookup(e.ContainerID); c != nil {
			es := exitFrom(e.Pid, e.ExitStatus, e.ExitedAt)
			s.r.recordExit(c, runtime.Exit{Code: int32(es.Code), Finished: es.At}, true, "event")
		}
	case *eventtypes.TaskOOM:
		if c := s.r.lookup(e.ContainerID); c != nil {
			c.markOOM()
			slog.Info("container OOM-killed", "runtime", s.r.name, "container", c.id)
		}
	}
	return &emptypb.Empty{}, nil
}

// markOOM remembers an OOM kill for the container's exit, also across a
// daemon restart: the bundle's oom file is what conmon writes for it.
func (c *container) markOOM() {
	c.mu.Lock()
	c.oom = true
	c.mu.Unlock()
	if err := os.WriteFile(c.bundle.File("oom"), nil, 0o600); err != nil {
		slog.Warn("record OOM kill", "container", c.id, "error", err)
	}
}

// recordExit keeps the first exit learned for c and, with notify, hands
// it to OnExit. Exited does not notify: its caller takes the result.
func (r *Runtime) recordExit(c *container, e runtime.Exit, notify bool, via string) runtime.Exit {
	c.mu.Lock()
	if c.exit != nil {
		first := *c.exit
		c.mu.Unlock()
		return first
	}
	e.ID = c.id
	e.OOMKilled = e.OOMKilled || c.oom || c.bundle.OOMKilled()
	if !e.OOMKilled && cgroupOOMKilled(c.bundle) {
		// The event is late or lost: record the kill as it would have.
		e.OOMKilled, c.oom = true, true
		if err := os.WriteFile(c.bundle.File("oom"), nil, 0o600); err != nil {
			slog.Warn("record OOM kill", "container", c.id, "error", err)
		}
	}
	if e.Finished.IsZero() {
		e.Finished = time.Now()
	}
	c.exit = &e
	close(c.exited)
	c.mu.Unlock()
	slog.Debug("container exited", "runtime", r.name, "container", c.id, "exit_code", e.Code,
		"oom_killed", e.OOMKilled, "via", via)
	if notify && r.opts.OnExit != nil {
		r.opts.OnExit(e)
	}
	return e
}

func (c *container) recorded() (runtime.Exit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exit == nil {
		return runtime.Exit{}, false
	}
	return *c.exit, true
}

// watch waits for the task's exit through the shim: the fallback for a
// lost event. A shim that went away concludes the exit.
func (r *Runtime) watch(c *container) {
	ctx := c.watchCtx
	for {
		es, err := c.group.api().Wait(ctx, c.id, "")
		switch {
		case ctx.Err() != nil:
			return // deleted, or the daemon is going away
		case err == nil:
			select {
			case <-c.exited:
			case <-time.After(waitGrace):
				r.recordExit(c, runtime.Exit{Code: int32(es.Code), Finished: es.At}, true, "wait")
			case <-ctx.Done():
			}
			return
		case isNotFound(err):
			return // the task is gone: Delete or Exited deals with it
		case isGone(err) && !c.group.shimAlive():
			if e, ok := r.concludeDead(r.ctx, c); ok {
				r.notify(e)
			}
			return
		}
		slog.Debug("wait for task exit failed; retrying", "runtime", r.name, "container", c.id, "error", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
		if isGone(err) {
			if err := r.redial(ctx, c.group); err != nil {
				slog.Debug("reconnect to shim", "runtime", r.name, "shim", c.group.id, "error", err)
			}
		}
	}
}

// notify passes an exit recorded without notification to OnExit.
func (r *Runtime) notify(e runtime.Exit) {
	if r.opts.OnExit != nil {
		r.opts.OnExit(e)
	}
}

// cgroupOOMKilled reads the container's memory cgroup, which outlives its
// processes until the task is deleted: the kernel's oom_kill count says
// what a late or lost /tasks/oom event would have. Only cgroupfs paths.
func cgroupOOMKilled(b runtime.Bundle) bool {
	p, err := b.CgroupsPath()
	if err != nil || !filepath.IsAbs(p) {
		return false
	}
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", p, "memory.oom_control"), // v1
		filepath.Join("/sys/fs/cgroup", p, "memory.events"),             // v2
	} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok && strings.TrimSpace(n) != "0" {
				return true
			}
		}
	}
	return false
}
