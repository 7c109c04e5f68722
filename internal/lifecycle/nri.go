package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cradle-runtime/cradle/internal/runtime"

	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/nri"
	"github.com/cradle-runtime/cradle/internal/sandbox"
)

// nriRuntime is what NRI plugins may ask of the server; a type of its own so
// that these methods stay off the manager's method set.
type nriRuntime struct{ m *Manager }

// StartNRI serves NRI plugins. It runs after restore, so a plugin that
// connects right away synchronizes with the complete state.
func (m *Manager) StartNRI() error {
	if err := m.nri.Start(); err != nil {
		return err
	}
	if m.nri.Enabled() {
		slog.Info("NRI enabled", "socket", m.config().NRI.SocketPath)
	}
	return nil
}

// nriPod is the pod a container event names; a bare ID if it is gone.
func (m *Manager) nriPod(id string) *api.PodSandbox {
	if sb, err := m.sandboxes.Get(id); err == nil {
		return nri.PodSandbox(sb.Get())
	}
	return &api.PodSandbox{Id: id}
}

// nriContainer converts r with the spec its bundle holds.
func nriContainer(r container.Record) *api.Container {
	spec, err := runtime.Bundle(r.Bundle).ReadSpec()
	if err != nil {
		slog.Debug("read container spec for NRI", "container", r.ID, "error", err)
	}
	return nri.Container(r, spec)
}

// nriEvent relays a notification; plugins cannot fail the CRI call with it.
func (m *Manager) nriEvent(ctx context.Context, ev api.Event, r container.Record) {
	if !m.nri.Enabled() || r.Infra {
		return
	}
	if err := m.nri.Event(ctx, ev, m.nriPod(r.SandboxID), nriContainer(r)); err != nil {
		slog.Warn("NRI event failed", "event", ev.String(), "container", r.ID, "error", err)
	}
}

// nriStopped tells plugins that a container stopped, once per container:
// callers call it only on the transition to EXITED.
func (m *Manager) nriStopped(r container.Record) {
	if !m.nri.Enabled() || r.Infra {
		return
	}
	if err := m.nri.StopContainer(context.Background(), m.nriPod(r.SandboxID), nriContainer(r)); err != nil {
		slog.Warn("NRI StopContainer failed", "container", r.ID, "error", err)
	}
}

// State lists what a connecting plugin synchronizes with: pods that
// RunPodSandbox returned, and their workload containers.
func (n nriRuntime) State() ([]*api.PodSandbox, []*api.Container) {
	var pods []*api.PodSandbox
	for _, sb := range n.m.sandboxes.List() {
		if r := sb.Get(); r.State != sandbox.Creating {
			pods = append(pods, nri.PodSandbox(r))
		}
	}
	var ctrs []*api.Container
	for _, c := range n.m.containers.List() {
		if r := c.Get(); !r.Infra {
			ctrs = append(ctrs, nriContainer(r))
		}
	}
	return pods, ctrs
}

// Update applies plugins' resource updates through the runtime, as
// UpdateContainerResources does.
func (n nriRuntime) Update(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	var failed []*api.ContainerUpdate
	var errs []error
	for _, u := range updates {
		err := n.m.updateResources(ctx, u.GetContainerId(), u.GetLinux().GetResources().ToOCI())
		if err == nil || u.GetIgnoreFailure() {
			continue
		}
		failed = append(failed, u)
		errs = append(errs, fmt.Errorf("update container %s: %w", u.GetContainerId(), err))
	}
	return failed, errors.Join(errs...)
}

// Evict stops the container; the kubelet sees it exit and acts.
func (n nriRuntime) Evict(ctx context.Context, id, reason string) error {
	c, err := n.m.containers.Get(id)
	if err != nil {
		return err
	}
	slog.Info("NRI plugin evicts container", "container", id, "reason", reason)
	return n.m.stopContainer(ctx, c, 0)
}
