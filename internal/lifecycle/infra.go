package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// needsInfra: the pins hold the pod's namespaces, so an infra process is
// only needed to hold a shared PID namespace, or when the handler asks for
// one (VM-like runtimes that create the sandbox as a container).
func (m *Manager) needsInfra(r sandbox.Record) bool {
	if m.config().InfraContainer(r.Handler) == config.InfraAlways {
		return true
	}
	return sandbox.SharedPID(r.Config)
}

// startInfra runs the pause container that holds the pod's PID namespace.
func (m *Manager) startInfra(ctx context.Context, sb *sandbox.Sandbox) error {
	pause := m.config().Image.PauseImage // one value, should a reload change it meanwhile
	img, err := m.images.Resolve(pause)
	if errors.Is(err, image.ErrNotFound) {
		img, err = m.images.Pull(ctx, pause, nil)
	}
	if err != nil {
		return crierr.ToStatus(err, "sandbox image %s", pause)
	}
	sr := sb.Get()
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "POD"},
		Image:    &runtimeapi.ImageSpec{Image: pause},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: sr.Config.GetLinux().GetResources(),
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				ReadonlyRootfs:   true,
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
		},
	}
	id := newID()
	rec := container.Record{
		ID: id, SandboxID: sr.ID, Name: sr.Name + "_infra", Config: cfg, Handler: sr.Handler,
		ImageID: img.ID, ImageName: pause, Infra: true,
		StopSignal: "SIGKILL",
		State:      runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: time.Now().UnixNano(),
	}
	// Record the infra ID first so a failure below is cleaned up by teardown.
	if err := sb.Update(m.putSandbox, func(r *sandbox.Record) { r.InfraID = id }); err != nil {
		return crierr.ToStatus(err, "persist sandbox")
	}
	c, err := m.createContainer(ctx, sb, rec, img, true)
	if err != nil {
		return err
	}
	if err := m.startContainer(ctx, c); err != nil {
		return err
	}
	return sb.Update(m.putSandbox, func(r *sandbox.Record) { r.InfraPid = c.Get().Pid })
}
