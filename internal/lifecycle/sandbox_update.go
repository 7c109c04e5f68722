package lifecycle

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/crierr"
	"github.com/cradle-runtime/cradle/internal/nri"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/stats"
	"github.com/cradle-runtime/cradle/internal/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdatePodSandboxResources resizes a pod in place: NRI plugins hear of
// it first (and may refuse), then the pod's own cgroup gets the new total
// (its containers' resources plus the overhead), a vm handler's sandbox
// task gets it too (the shim resizes the VM, as containerd passes it),
// and the record keeps the new sizing.
func (m *Manager) UpdatePodSandboxResources(ctx context.Context, id string, overhead, res *runtimeapi.LinuxContainerResources) error {
	if id == "" {
		return crierr.Invalid("pod_sandbox_id", "is empty")
	}
	if res == nil {
		return crierr.Invalid("resources", "is required")
	}
	if err := crierr.Checked(validate.Resources("resources", res)); err != nil {
		return err
	}
	if err := crierr.Checked(validate.Resources("overhead", overhead)); err != nil {
		return err
	}
	sb, err := m.sandboxes.Get(id)
	if err != nil {
		return crierr.ToStatus(err, "pod_sandbox_id")
	}
	sb.Op.Lock()
	defer sb.Op.Unlock()
	r := sb.Get()
	if r.State != sandbox.Ready {
		return status.Errorf(codes.FailedPrecondition, "pod_sandbox_id: sandbox %s is not ready", id)
	}
	total := ocispec.PodTotal(res, overhead)
	spec, err := ocispec.Resources(total, "resources")
	if err != nil {
		return crierr.ToStatus(err, "update pod sandbox %s", id)
	}
	if m.nri.Enabled() {
		ociRes, err := ocispec.Resources(res, "resources")
		if err != nil {
			return crierr.ToStatus(err, "update pod sandbox %s", id)
		}
		var ociOver *specs.LinuxResources
		if overhead != nil {
			if ociOver, err = ocispec.Resources(overhead, "overhead"); err != nil {
				return crierr.ToStatus(err, "update pod sandbox %s", id)
			}
		}
		if err := m.nri.UpdatePodSandbox(ctx, nri.PodSandbox(r), ociOver, ociRes); err != nil {
			return crierr.ToStatus(err, "update pod sandbox %s", id)
		}
	}
	if parent := m.ownCgroupParent(r); parent != "" {
		err := runtime.SetCgroupLimits(stats.ResolvePath(parent), ocispec.PodCgroupLimits(total))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Nothing runs in it yet, and the kubelet, which makes pod
			// cgroups, has not: the limits come with the first container.
			slog.Info("pod cgroup does not exist yet; not resized", "sandbox", id, "cgroup", parent)
		case err != nil:
			return crierr.ToStatus(err, "update pod sandbox %s", id)
		}
	} else {
		slog.Info("pod has no cgroup of its own; only its record and plugins are updated", "sandbox", id)
	}
	if m.handlerConfig(r.Handler).Type == config.HandlerTypeVM && r.InfraID != "" {
		rt, _, err := m.runtimeFor(r.Handler)
		if err != nil {
			return crierr.ToStatus(err, "runtime")
		}
		if err := rt.Update(context.WithoutCancel(ctx), r.InfraID, spec); err != nil {
			return crierr.ToStatus(err, "update the sandbox task of pod %s", id)
		}
	}
	if err := sb.Update(m.putSandbox, func(r *sandbox.Record) {
		cfg := proto.Clone(r.Config).(*runtimeapi.PodSandboxConfig)
		if cfg.Linux == nil {
			cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{}
		}
		cfg.Linux.Resources, cfg.Linux.Overhead = res, overhead
		r.Config = cfg
	}); err != nil {
		return crierr.ToStatus(err, "persist sandbox")
	}
	if err := m.nri.PostUpdatePodSandbox(ctx, nri.PodSandbox(sb.Get())); err != nil {
		slog.Warn("NRI PostUpdatePodSandbox failed", "sandbox", id, "error", err)
	}
	slog.Info("pod sandbox resized", "sandbox", id, "cpu_quota", total.GetCpuQuota(), "cpu_period", total.GetCpuPeriod(),
		"cpu_shares", total.GetCpuShares(), "memory_limit", total.GetMemoryLimitInBytes())
	return nil
}

// ownCgroupParent is the pod's cgroup parent if no other pod shares it
// (the kubelet gives each pod its own): "" means the daemon's shared
// default, whose limits are not one pod's to set.
func (m *Manager) ownCgroupParent(r sandbox.Record) string {
	parent := r.Config.GetLinux().GetCgroupParent()
	if parent == "" {
		return ""
	}
	for _, sb := range m.sandboxes.List() {
		if o := sb.Get(); o.ID != r.ID && o.Config.GetLinux().GetCgroupParent() == parent {
			return ""
		}
	}
	return parent
}
