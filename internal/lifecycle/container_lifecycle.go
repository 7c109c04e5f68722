package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/cradle-runtime/cradle/internal/failpoint"
	"github.com/cradle-runtime/cradle/internal/observe"
	"go.opentelemetry.io/otel/attribute"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/store"
	"github.com/moby/sys/signal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StartContainer starts a created container.
func (m *Manager) StartContainer(ctx context.Context, id string) error {
	c, err := m.Container(id)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := m.startContainer(ctx, c); err != nil {
		return err
	}
	m.obs.ContainerStarted(time.Since(start))
	return nil
}

func (m *Manager) Container(id string) (*container.Container, error) {
	if id == "" {
		return nil, crierr.Invalid("container_id", "is empty")
	}
	c, err := m.containers.Get(id)
	if err != nil {
		return nil, crierr.ToStatus(err, "container_id")
	}
	return c, nil
}

func (m *Manager) startContainer(ctx context.Context, c *container.Container) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	r := c.Get()
	if r.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		return status.Errorf(codes.FailedPrecondition, "container_id: container %s is %s, not created", r.ID, r.State)
	}
	rt, _, err := m.runtimeFor(r.Handler)
	if err != nil {
		return crierr.ToStatus(err, "runtime")
	}
	if m.nri.Enabled() && !r.Infra {
		if err := m.nri.StartContainer(ctx, m.nriPod(r.SandboxID), nriContainer(r)); err != nil {
			return crierr.ToStatus(err, "start container %s", r.ID)
		}
	}
	failpoint.Hit("start:before-runtime")
	// The process may run, and even exit, before `runtime start` returns.
	startedAt := time.Now().UnixNano()
	sctx, span := observe.StartSpan(context.WithoutCancel(ctx), "runtime start",
		attribute.String("container.id", r.ID), attribute.String("runtime.handler", r.Handler))
	err = rt.Start(sctx, r.ID)
	observe.EndSpan(span, err)
	if err != nil {
		// The container can't run; report it as exited with the reason.
		_, _ = c.Transition(m.putContainer, runtimeapi.ContainerState_CONTAINER_EXITED, func(r *container.Record) {
			r.FinishedAt, r.ExitCode = time.Now().UnixNano(), 128
			r.Reason, r.Message = "StartError", err.Error()
		})
		return crierr.ToStatus(err, "start container %s", r.ID)
	}
	failpoint.Hit("start:after-runtime")
	// An exit recorded meanwhile wins: EXITED -> RUNNING is no edge.
	if _, err := c.Transition(m.putContainer, runtimeapi.ContainerState_CONTAINER_RUNNING, func(r *container.Record) {
		r.StartedAt = startedAt
	}); err != nil && !errors.Is(err, store.ErrIllegalTransition) {
		return crierr.ToStatus(err, "persist container")
	}
	m.emit(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, c.Get())
	m.nriEvent(ctx, api.Event_POST_START_CONTAINER, c.Get())
	// A very short-lived process may have exited before we recorded the start.
	if e, ok := rt.Exited(ctx, handle(c.Get())); ok {
		m.onExit(e)
	}
	return nil
}

// StopContainer sends the stop signal, then SIGKILL after the timeout.
func (m *Manager) StopContainer(ctx context.Context, id string, timeout int64) error {
	// Stopping what is gone is done, as with pods; the kubelet retries.
	c, ok, err := crierr.LookupForTeardown(m.containers, id, "container_id")
	if !ok {
		return err
	}
	if err := m.stopContainer(context.WithoutCancel(ctx), c, timeout); err != nil {
		return crierr.ToStatus(err, "stop container %s", c.Get().ID)
	}
	return nil
}

func (m *Manager) stopContainer(ctx context.Context, c *container.Container, timeout int64) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	r := c.Get()
	rt, _, err := m.runtimeFor(r.Handler)
	if err != nil {
		return err
	}
	switch r.State {
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return nil
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		// Never started: remove it from the runtime and record an exit.
		if err := rt.Delete(ctx, r.ID); err != nil {
			return err
		}
		if _, err := c.Transition(m.putContainer, runtimeapi.ContainerState_CONTAINER_EXITED, func(r *container.Record) {
			r.FinishedAt, r.ExitCode, r.Reason = time.Now().UnixNano(), 137, "Error"
		}); err != nil {
			return err
		}
		m.nriStopped(c.Get())
		return nil
	}
	if timeout > 0 {
		sig := syscall.SIGTERM
		if r.StopSignal != "" {
			if parsed, err := signal.ParseSignal(r.StopSignal); err == nil {
				sig = parsed
			}
		}
		if err := rt.Kill(ctx, r.ID, sig, false); err != nil && !errors.Is(err, runtime.ErrNotExist) {
			slog.Warn("stop signal failed", "container", r.ID, "error", err)
		}
		slog.Debug("stop signal sent; waiting for the exit", "container", r.ID, "signal", sig, "timeout", timeout)
		if m.waitExit(ctx, rt, c, time.Duration(timeout)*time.Second) {
			return nil
		}
	}
	if err := rt.Kill(ctx, r.ID, syscall.SIGKILL, true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
		slog.Warn("SIGKILL failed", "container", r.ID, "error", err)
	}
	if m.waitExit(ctx, rt, c, 30*time.Second) {
		return nil
	}
	return fmt.Errorf("container %s did not exit after SIGKILL", r.ID)
}

// waitExit waits for the exit, also asking the runtime in case the
// watcher event was missed or the monitor died without reporting it.
func (m *Manager) waitExit(ctx context.Context, rt runtime.Runtime, c *container.Container, d time.Duration) bool {
	deadline := time.After(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.Exited():
			return true
		case <-tick.C:
			if e, ok := rt.Exited(ctx, handle(c.Get())); ok {
				m.onExit(e)
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// handle is what a runtime needs to address the container.
func handle(r container.Record) runtime.Handle {
	return runtime.Handle{ID: r.ID, Bundle: runtime.Bundle(r.Bundle), LogPath: r.LogPath,
		Monitor: runtime.Process{Pid: r.ConmonPid, Start: r.ConmonStart}}
}

// onExit records an exit the runtime reported.
func (m *Manager) onExit(e runtime.Exit) {
	c, err := m.containers.Get(e.ID)
	if err != nil || c.Get().ID != e.ID {
		return
	}
	m.recordExit(c, e)
}

func (m *Manager) recordExit(c *container.Container, e runtime.Exit) {
	changed, err := c.Transition(m.putContainer, runtimeapi.ContainerState_CONTAINER_EXITED, func(r *container.Record) {
		r.ExitCode, r.FinishedAt = e.Code, e.Finished.UnixNano()
		if r.StartedAt == 0 {
			r.StartedAt = r.FinishedAt
		}
		switch {
		case e.OOMKilled:
			r.Reason = "OOMKilled"
		case e.Code == 0:
			r.Reason = "Completed"
		default:
			r.Reason = "Error"
		}
		if e.Message != "" {
			r.Message = e.Message
		}
	})
	if err != nil {
		slog.Error("record container exit", "container", e.ID, "error", err)
		return
	}
	if changed && e.OOMKilled {
		m.obs.OOMKilled()
	}
	r := c.Get()
	if r.Infra {
		// The pod lost its PID namespace holder: it is no longer ready.
		if sb, err := m.sandboxes.Get(r.SandboxID); err == nil {
			// Only a ready pod becomes NOTREADY here; one still being
			// created is finished by RunPodSandbox.
			if sb.Get().State == sandbox.Ready {
				if changed, _ := sb.Transition(m.putSandbox, sandbox.NotReady, nil); changed {
					// As containerd tells of a sandbox that exited.
					m.emitSandbox(sb.Get(), runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
				}
			}
		}
		return
	}
	m.emit(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, r)
	slog.Info("container exited", "container", e.ID, "exit_code", e.Code)
	if changed {
		// Also for a process that exited by itself: plugins track it.
		m.nriStopped(r)
	}
}

// reconcile brings a restored container up to date with what happened
// while the daemon was down.
func (m *Manager) reconcile(c *container.Container) {
	r := c.Get()
	// Pid 0: the create never reached the runtime; finishInterruptedCreates
	// removes it.
	if r.State == runtimeapi.ContainerState_CONTAINER_CREATED && r.Pid == 0 {
		return
	}
	rt, _, err := m.runtimeFor(r.Handler)
	if err != nil {
		return
	}
	ctx := context.Background()
	// An exited container is restored too: a shim still holds its task
	// until RemoveContainer deletes it there, and without the restore
	// that delete never reaches the shim, which then outlives the pod.
	if err := rt.Restore(ctx, handle(r)); err != nil {
		slog.Warn("restore container in its runtime", "container", r.ID, "error", err)
	}
	if r.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		return
	}
	if e, ok := rt.Exited(ctx, handle(r)); ok {
		m.recordExit(c, e)
		return
	}
	if r.State == runtimeapi.ContainerState_CONTAINER_CREATED {
		// A crash between `runtime start` and recording it: ask the runtime.
		if st, err := rt.State(ctx, r.ID); err == nil && st.Status == "running" {
			_, _ = c.Transition(m.putContainer, runtimeapi.ContainerState_CONTAINER_RUNNING, func(r *container.Record) {
				r.StartedAt = time.Now().UnixNano()
			})
		}
	}
}

// RemoveContainer kills the container if needed and removes it. An unknown
// ID is success.
func (m *Manager) RemoveContainer(ctx context.Context, id string) error {
	c, ok, err := crierr.LookupForTeardown(m.containers, id, "container_id")
	if !ok {
		return err
	}
	if err := m.removeContainer(context.WithoutCancel(ctx), c); err != nil {
		return crierr.ToStatus(err, "remove container %s", c.Get().ID)
	}
	return nil
}

func (m *Manager) removeContainer(ctx context.Context, c *container.Container) error {
	if err := m.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	c.Op.Lock()
	defer c.Op.Unlock()
	r := c.Get()
	rt, _, err := m.runtimeFor(r.Handler)
	if err != nil {
		return err
	}
	if err := rt.Delete(ctx, r.ID); err != nil {
		return err
	}
	if err := runtime.RemoveCgroup(r.CgroupsPath); err != nil {
		slog.Warn("remove container cgroup", "container", r.ID, "error", err)
	}
	if err := m.images.RemoveRootfs(r.ID); err != nil {
		return err
	}
	var nctr *api.Container // read before the bundle with its spec goes
	if m.nri.Enabled() && !r.Infra {
		nctr = nriContainer(r)
	}
	if err := runtime.Bundle(r.Bundle).Remove(); err != nil {
		return fmt.Errorf("remove bundle: %w", err)
	}
	if err := m.ctrRecords.Delete(r.ID); err != nil {
		return err
	}
	podLabel := ""
	if sb, err := m.sandboxes.Get(r.SandboxID); err == nil {
		podLabel = sb.Get().SELinuxLabel
	}
	ocispec.ReleaseContainerSELinuxLabel(r.SELinuxLabel, podLabel)
	m.containers.Delete(r.ID)
	m.ctrNames.Release(r.Name, r.ID)
	m.emit(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, r)
	if nctr != nil {
		if err := m.nri.Event(ctx, api.Event_REMOVE_CONTAINER, m.nriPod(r.SandboxID), nctr); err != nil {
			slog.Warn("NRI RemoveContainer failed", "container", r.ID, "error", err)
		}
	}
	return nil
}
