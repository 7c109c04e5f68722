package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/cradle-runtime/cradle/internal/failpoint"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/nri"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopPodSandbox stops the pod's containers, tears its network down and
// releases its namespaces. It is idempotent, and an unknown ID is success,
// as the CRI requires.
func (m *Manager) StopPodSandbox(ctx context.Context, id string) error {
	sb, ok, err := crierr.LookupForTeardown(m.sandboxes, id, "pod_sandbox_id")
	if !ok {
		return err
	}
	sb.Op.Lock()
	defer sb.Op.Unlock()
	if err := m.teardownSandbox(context.WithoutCancel(ctx), sb, 0); err != nil {
		return crierr.ToStatus(err, "stop sandbox %s", sb.ID())
	}
	return nil
}

// RemovePodSandbox forces the stop, then removes the containers, the files
// and the record. Idempotent; an unknown ID is success.
func (m *Manager) RemovePodSandbox(ctx context.Context, id string) error {
	sb, ok, err := crierr.LookupForTeardown(m.sandboxes, id, "pod_sandbox_id")
	if !ok {
		return err
	}
	sb.Op.Lock()
	defer sb.Op.Unlock()
	if err := m.removeSandbox(context.WithoutCancel(ctx), sb); err != nil {
		return crierr.ToStatus(err, "remove sandbox %s", sb.ID())
	}
	slog.Info("pod sandbox removed", "sandbox", sb.ID())
	return nil
}

// gracePeriod is the container's termination grace period, which the
// kubelet records as an annotation, else the caller's default.
func gracePeriod(cfg *runtimeapi.ContainerConfig, def int64) int64 {
	if v, err := strconv.ParseInt(cfg.GetAnnotations()["io.kubernetes.pod.terminationGracePeriod"], 10, 64); err == nil && v >= 0 {
		return v
	}
	return def
}

// removeSandbox stops the sandbox, removes its containers and files, and
// forgets it. Callers hold sb.Op.
func (m *Manager) removeSandbox(ctx context.Context, sb *sandbox.Sandbox) error {
	// Plugins never heard of a pod still CREATING (a rolled back run).
	announced := sb.Get().State != sandbox.Creating
	if err := m.teardownSandbox(ctx, sb, 0); err != nil {
		return err
	}
	for _, c := range m.containersOf(sb.ID(), true) {
		if err := m.removeContainer(ctx, c); err != nil {
			return fmt.Errorf("remove container %s: %w", c.Get().ID, err)
		}
	}
	if err := sandbox.RemoveFiles(sb.Get().Dir); err != nil {
		return err
	}
	m.forgetSandbox(sb)
	if announced {
		if err := m.nri.RemovePodSandbox(ctx, nri.PodSandbox(sb.Get())); err != nil {
			slog.Warn("NRI RemovePodSandbox failed", "sandbox", sb.ID(), "error", err)
		}
		m.emitSandbox(sb.Get(), runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	}
	return nil
}

// teardownSandbox is the one path that releases a sandbox's resources, for
// Stop, Remove and RunPodSandbox's rollback. Each step is best-effort safe
// to repeat; the first error is returned after trying the rest, so the
// caller (the kubelet) retries.
func (m *Manager) teardownSandbox(ctx context.Context, sb *sandbox.Sandbox, timeout int64) error {
	var errs []error
	for _, c := range m.containersOf(sb.ID(), false) {
		if err := m.stopContainer(ctx, c, gracePeriod(c.Get().Config, timeout)); err != nil {
			errs = append(errs, err)
		}
	}
	if r := sb.Get(); r.InfraID != "" {
		if c, err := m.containers.Get(r.InfraID); err == nil {
			if err := m.stopContainer(ctx, c, 0); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Unconditionally: a crash may have left a holder before its record.
	if err := m.pins.StopPIDHolder(sb.ID()); err != nil {
		errs = append(errs, err)
	}
	failpoint.Hit("stop:after-containers")
	r := sb.Get()
	// Once per pod, with its containers stopped and its network still up.
	if r.State != sandbox.Creating && !r.NRIStopped && m.nri.Enabled() {
		if err := m.nri.StopPodSandbox(ctx, nri.PodSandbox(r)); err != nil {
			slog.Warn("NRI StopPodSandbox failed", "sandbox", r.ID, "error", err)
		}
		if err := sb.Update(m.putSandbox, func(r *sandbox.Record) { r.NRIStopped = true }); err != nil {
			errs = append(errs, err)
		}
	}
	if !sandbox.HostNetwork(r.Config) && !r.NetworkStopped {
		pod := m.podNetwork(r)
		// Always DEL, even when the namespace is gone, so IPAM releases the
		// address; the CNI spec allows an empty netns path for that.
		if !netns.IsNSFS(pod.NetNS) {
			pod.NetNS = ""
		}
		err := m.net.Teardown(ctx, pod, r.Network)
		if err != nil {
			errs = append(errs, fmt.Errorf("tear down pod network: %w", err))
		} else if err := sb.Update(m.putSandbox, func(r *sandbox.Record) { r.NetworkStopped = true }); err != nil {
			errs = append(errs, err)
		}
	}
	failpoint.Hit("stop:after-cni")
	if err := m.pins.Release(r.ID, netns.Pins{Net: r.NetNS, IPC: r.IPCNS, UTS: r.UTSNS, User: r.UserNS}); err != nil {
		errs = append(errs, fmt.Errorf("release pod namespaces: %w", err))
	}
	if err := sandbox.UnmountShm(r.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	was := r.State
	changed, err := sb.Transition(m.putSandbox, sandbox.NotReady, nil)
	if changed && was == sandbox.Ready {
		m.emitSandbox(sb.Get(), runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
	return err
}
