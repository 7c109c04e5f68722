package lifecycle

import (
	"context"
	"os"
	"time"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources applies new limits through the runtime and
// records them, so ContainerStatus reports what is in force.
func (m *Manager) UpdateContainerResources(ctx context.Context, id string, lin *runtimeapi.LinuxContainerResources) error {
	c, err := m.Container(id)
	if err != nil {
		return err
	}
	if lin == nil {
		return crierr.Invalid("linux", "is required")
	}
	if err := crierr.Checked(validate.Resources("linux", lin)); err != nil {
		return err
	}
	c.Op.Lock()
	defer c.Op.Unlock()
	r := c.Get()
	if err := updatable(r); err != nil {
		return err
	}
	rt, _, err := m.runtimeFor(r.Handler)
	if err != nil {
		return crierr.ToStatus(err, "runtime")
	}
	res, err := ocispec.Resources(lin, "linux")
	if err != nil {
		return crierr.ToStatus(err, "update container %s", r.ID)
	}
	if m.nri.Enabled() && !r.Infra {
		// Plugins may amend the update; what they return replaces it.
		in := api.FromOCILinuxResources(res, nil)
		out, err := m.nri.UpdateContainer(ctx, m.nriPod(r.SandboxID), nriContainer(r), in)
		if err != nil {
			return crierr.ToStatus(err, "update container %s", r.ID)
		}
		if out != in && out != nil {
			res = out.ToOCI()
		}
	}
	if err := rt.Update(context.WithoutCancel(ctx), r.ID, res); err != nil {
		return crierr.ToStatus(err, "update container %s", r.ID)
	}
	if err := c.Update(m.putContainer, func(r *container.Record) {
		cfg := proto.Clone(r.Config).(*runtimeapi.ContainerConfig)
		if cfg.Linux == nil {
			cfg.Linux = &runtimeapi.LinuxContainerConfig{}
		}
		cfg.Linux.Resources = lin
		r.Config = cfg
	}); err != nil {
		return crierr.ToStatus(err, "persist container")
	}
	m.nriEvent(ctx, api.Event_POST_UPDATE_CONTAINER, c.Get())
	return nil
}

func updatable(r container.Record) error {
	if r.State != runtimeapi.ContainerState_CONTAINER_RUNNING && r.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		return status.Errorf(codes.FailedPrecondition, "container_id: container %s is %s; only created or running containers can be updated", r.ID, r.State)
	}
	return nil
}

// updateResources applies limits an NRI plugin asked for. They are not
// recorded in the CRI config: the kubelet's limits stay what it reads back.
func (m *Manager) updateResources(ctx context.Context, id string, res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	c, err := m.containers.Get(id)
	if err != nil {
		return err
	}
	c.Op.Lock()
	defer c.Op.Unlock()
	r := c.Get()
	if err := updatable(r); err != nil {
		return err
	}
	rt, _, err := m.runtimeFor(r.Handler)
	if err != nil {
		return err
	}
	return rt.Update(context.WithoutCancel(ctx), r.ID, res)
}

// ReopenContainerLog makes the log writer reopen the log after the kubelet rotated
// it. It never takes the container's operation lock, so it does not wait
// behind a stop in progress.
func (m *Manager) ReopenContainerLog(ctx context.Context, id string) error {
	c, err := m.Container(id)
	if err != nil {
		return err
	}
	r := c.Get()
	if r.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return status.Errorf(codes.FailedPrecondition, "container_id: container %s is not running", r.ID)
	}
	rt, _, err := m.runtimeFor(r.Handler)
	if err != nil {
		return crierr.ToStatus(err, "runtime")
	}
	if err := rt.ReopenLog(ctx, handle(r)); err != nil {
		return crierr.ToStatus(err, "reopen log of %s", r.ID)
	}
	// The log writer recreates the file asynchronously; wait briefly so the caller
	// sees the new file, as CRI-O does.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(r.LogPath); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return status.Errorf(codes.Unknown, "container %s: log %s was not reopened within 5s", r.ID, r.LogPath)
}
