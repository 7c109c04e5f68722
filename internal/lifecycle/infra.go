package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"time"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/validate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// infraKind is what holds a pod's PID namespace, if anything does.
type infraKind int

const (
	infraNone   infraKind = iota // the pins hold every namespace the pod has
	infraHolder                  // cradle's own PID holder (netns.Manager)
	infraPause                   // a pause container
)

// infraFor: the pins hold the pod's namespaces, so a process is only
// needed to hold a shared PID namespace, and a pause container only when
// the handler asks for one (VM-like runtimes that create the sandbox as a
// container) or the pod has a user namespace, which must own the PID
// namespace and which the holder cannot join.
func (m *Manager) infraFor(r sandbox.Record) infraKind {
	switch {
	case m.config().InfraContainer(r.Handler) == config.InfraAlways:
		return infraPause
	case !sandbox.SharedPID(r.Config):
		return infraNone
	case r.UserNS != "":
		return infraPause
	}
	return infraHolder
}

// startPIDHolder starts the process that holds the pod's PID namespace.
func (m *Manager) startPIDHolder(sb *sandbox.Sandbox) error {
	r := sb.Get()
	cg, err := m.holderCgroup(r)
	if err != nil {
		return err
	}
	h, err := m.pins.StartPIDHolder(r.ID, netns.Pins{Net: r.NetNS, IPC: r.IPCNS, UTS: r.UTSNS}, cg)
	if err != nil {
		return crierr.ToStatus(err, "hold pod PID namespace")
	}
	if err := sb.Update(m.putSandbox, func(r *sandbox.Record) { r.InfraPid, r.PIDHolder = h.Pid, true }); err != nil {
		return crierr.ToStatus(err, "persist sandbox")
	}
	m.watchPIDHolder(sb, h)
	return nil
}

// watchPIDHolder marks the pod NOTREADY when its PID holder exits, as an
// exited pause container would: the kernel killed the pod's processes with
// it, and the kubelet then makes a new sandbox.
func (m *Manager) watchPIDHolder(sb *sandbox.Sandbox, h netns.PIDHolder) {
	go func() {
		if err := h.WaitExit(context.Background()); err != nil {
			slog.Warn("watch pid holder", "sandbox", sb.ID(), "pid", h.Pid, "error", err)
			return
		}
		// Only a ready pod: one still being created is finished by
		// RunPodSandbox, and Stop marks its own.
		if sb.Get().State != sandbox.Ready {
			return
		}
		slog.Warn("pid holder exited: pod sandbox is NOTREADY", "sandbox", sb.ID(), "pid", h.Pid)
		changed, err := sb.Transition(m.putSandbox, sandbox.NotReady, nil)
		if err != nil {
			slog.Error("mark pod sandbox NOTREADY", "sandbox", sb.ID(), "error", err)
		}
		if changed {
			// As containerd tells of a sandbox that exited.
			m.emitSandbox(sb.Get(), runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
		}
	}()
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

// holderCgroup is the PID holder's cgroup below the pod's, named as a
// container's would be (cgroupfs only: with systemd it would need a scope
// of its own, and stays in the daemon's).
func (m *Manager) holderCgroup(r sandbox.Record) (string, error) {
	if m.config().Runtime.CgroupDriver == config.CgroupDriverSystemd {
		return "", nil
	}
	parent := r.Config.GetLinux().GetCgroupParent()
	if parent == "" {
		parent = m.config().Runtime.CgroupParent
	}
	if err := validate.CgroupParent("config.linux.cgroup_parent", parent); err != nil {
		return "", crierr.Checked(err)
	}
	if parent == "" {
		parent = "/cradle"
	}
	return path.Join("/", parent, "cradle-"+r.ID), nil
}
