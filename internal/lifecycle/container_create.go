package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cradle-runtime/cradle/internal/failpoint"
	"github.com/cradle-runtime/cradle/internal/observe"
	"go.opentelemetry.io/otel/attribute"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/cdi"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/nri"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateContainer builds the container's spec and creates it in the
// runtime. On any failure nothing is left behind.
func (m *Manager) CreateContainer(ctx context.Context, podID string, cfg *runtimeapi.ContainerConfig) (string, error) {
	if podID == "" {
		return "", crierr.Invalid("pod_sandbox_id", "is empty")
	}
	if err := crierr.Checked(validate.Container(cfg)); err != nil {
		return "", err
	}
	sb, err := m.sandboxes.Get(podID)
	if err != nil {
		return "", crierr.ToStatus(err, "pod_sandbox_id")
	}
	// A pod not ready yet (RunPodSandbox holds its lock until it is)
	// refuses at once. Then the lock is held until the container is in
	// the index: a StopPodSandbox either runs first, and the pod is no
	// longer ready on the second look, or finds the container.
	notReady := func(sr sandbox.Record) error {
		if sr.State != sandbox.Ready {
			return status.Errorf(codes.FailedPrecondition, "pod_sandbox_id: sandbox %s is not ready", sr.ID)
		}
		return nil
	}
	if err := notReady(sb.Get()); err != nil {
		return "", err
	}
	sb.Op.Lock()
	defer sb.Op.Unlock()
	sr := sb.Get()
	if err := notReady(sr); err != nil {
		return "", err
	}
	img, err := m.images.Resolve(cfg.GetImage().GetImage())
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return "", status.Errorf(codes.NotFound, "config.image.image: image %q is not pulled", cfg.GetImage().GetImage())
		}
		return "", crierr.ToStatus(err, "config.image.image")
	}
	name := container.Name(cfg.GetMetadata(), sr.Config.GetMetadata())
	id := newID()
	if holder, ok := m.ctrNames.Reserve(name, id); !ok {
		return "", status.Errorf(codes.AlreadyExists, "config.metadata.name: container name %q is already used by %s", name, holder)
	}
	rec := container.Record{
		ID: id, SandboxID: sr.ID, Name: name, Config: cfg, Handler: sr.Handler,
		ImageID: img.ID, ImageName: cfg.GetImage().GetImage(),
		StopSignal: ocispec.StopSignal(cfg, img.Config),
		State:      runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: time.Now().UnixNano(),
	}
	if cfg.GetLogPath() != "" && sr.Config.GetLogDirectory() != "" {
		rec.LogPath = filepath.Join(sr.Config.GetLogDirectory(), cfg.GetLogPath())
	}
	c, err := m.createContainer(ctx, sb, rec, img, false)
	if err != nil {
		m.ctrNames.Release(name, id)
		return "", err
	}
	return c.Get().ID, nil
}

// createContainer makes the rootfs, the spec and the runtime container; it
// undoes each step if a later one fails.
func (m *Manager) createContainer(ctx context.Context, sb *sandbox.Sandbox, rec container.Record, img *image.ImageInfo, infra bool) (c *container.Container, retErr error) {
	rt, _, err := m.runtimeFor(rec.Handler)
	if err != nil {
		return nil, crierr.ToStatus(err, "runtime")
	}
	if !infra {
		// From the hook until the container is listed; see nri.BlockSync.
		unblock := m.nri.BlockSync()
		defer unblock()
	}
	var cleanups []func()
	defer func() {
		if retErr != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()
	var cdiDevices []string
	if !infra {
		// Before anything is made: an unknown device fails the request.
		if cdiDevices, err = m.cdiDevices(rec.Config); err != nil {
			return nil, err
		}
	}
	bundle, err := m.bundles.For(rec.ID)
	if err != nil {
		return nil, crierr.ToStatus(err, "create bundle")
	}
	rec.Bundle = bundle.Dir()
	if err := bundle.Create(); err != nil {
		return nil, crierr.ToStatus(err, "create bundle")
	}
	cleanups = append(cleanups, func() { _ = bundle.Remove() })
	sr := sb.Get()
	var rootfs string
	if sr.UserNS != "" {
		rootfs, err = m.images.CreateRootfsMapped(rec.ID, rec.ID, img.StorageID, imageIDMaps(sr.UIDMappings), imageIDMaps(sr.GIDMappings))
	} else {
		rootfs, err = m.images.CreateRootfs(rec.ID, rec.ID, img.StorageID)
	}
	if err != nil {
		return nil, crierr.ToStatus(err, "create root filesystem")
	}
	cleanups = append(cleanups, func() { _ = m.images.RemoveRootfs(rec.ID) })
	rec.Rootfs = rootfs
	// Image volumes are released with the writable layer (RemoveRootfs).
	vols, err := m.mountImageVolumes(rec.ID, rec.Config)
	if err != nil {
		return nil, err
	}
	imageVolumes := map[int]string{}
	if len(vols) > 0 {
		rec.Config = proto.Clone(rec.Config).(*runtimeapi.ContainerConfig)
		for i, v := range vols {
			rec.Config.Mounts[i].Image.ImageRef = v.ImageID
			imageVolumes[i] = v.Path
		}
	}

	if sr.UserNS != "" {
		if rootfs, err = bundle.BindRootfs(rootfs); err != nil {
			return nil, crierr.ToStatus(err, "root filesystem")
		}
	}
	in, err := m.containerInput(sr, rec, img, rootfs)
	if err != nil {
		return nil, err
	}
	in.ImageVolumes = imageVolumes
	ociSpec, err := ocispec.ContainerSpec(in)
	if err != nil {
		return nil, crierr.ToStatus(err, "container config")
	}
	// Volume dirs live in the bundle, so removing the container removes them.
	if err := ocispec.PrepareHost(in, ociSpec); err != nil {
		return nil, crierr.ToStatus(err, "container config")
	}
	// As containerd does, after the spec is built and before NRI plugins
	// see it.
	if err := m.cdi.Inject(ociSpec, cdiDevices); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "config.cdi_devices: %v", err)
	}
	if infra {
		ocispec.MarkSandbox(ociSpec, sr.Config.GetLinux().GetResources())
	}
	if !infra && m.nri.Enabled() {
		if err := m.nri.CreateContainer(ctx, nri.PodSandbox(sr), nri.Container(rec, ociSpec), ociSpec); err != nil {
			return nil, crierr.ToStatus(err, "create container")
		}
		// Plugins saw the container: if creating it fails, it is removed.
		cleanups = append(cleanups, func() {
			if err := m.nri.Event(ctx, api.Event_REMOVE_CONTAINER, nri.PodSandbox(sr), nri.Container(rec, ociSpec)); err != nil {
				slog.Warn("NRI RemoveContainer after failed CreateContainer", "container", rec.ID, "error", err)
			}
		})
	}
	if p := ociSpec.Process; p != nil {
		rec.User = &container.User{UID: p.User.UID, GID: p.User.GID, Groups: p.User.AdditionalGids}
		rec.SELinuxLabel = p.SelinuxLabel
		cleanups = append(cleanups, func() { ocispec.ReleaseContainerSELinuxLabel(rec.SELinuxLabel, sr.SELinuxLabel) })
	}
	if ociSpec.Linux != nil {
		rec.CgroupsPath = ociSpec.Linux.CgroupsPath
	}
	if rec.LogPath == "" {
		rec.LogPath = bundle.LogPath()
	}
	if err := bundle.WriteSpec(ociSpec); err != nil {
		return nil, crierr.ToStatus(err, "write runtime spec")
	}
	// Record first: a crash after conmon started must leave a trace.
	if err := m.putContainer(rec); err != nil {
		return nil, crierr.ToStatus(err, "persist container")
	}
	cleanups = append(cleanups, func() { _ = m.ctrRecords.Delete(rec.ID) })
	failpoint.Hit("create:after-record")
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*time.Minute)
	defer cancel()
	cctx, span := observe.StartSpan(cctx, "runtime create",
		attribute.String("container.id", rec.ID), attribute.String("runtime.handler", rec.Handler))
	created, err := rt.Create(cctx, runtime.CreateOpts{
		ID: rec.ID, Name: rec.Name, Bundle: bundle, LogPath: rec.LogPath,
		Terminal: rec.Config.GetTty(), Stdin: rec.Config.GetStdin(), StdinOnce: rec.Config.GetStdinOnce(),
		LogSizeMax: m.config().Runtime.LogSizeMax,
	})
	observe.EndSpan(span, err)
	if err != nil {
		_ = rt.Delete(context.WithoutCancel(ctx), rec.ID)
		return nil, crierr.ToStatus(err, "create container")
	}
	rec.Pid, rec.ConmonPid, rec.ConmonStart = created.Pid, created.Monitor.Pid, created.Monitor.Start
	c = container.New(rec)
	if err := c.Update(m.putContainer, func(*container.Record) {}); err != nil {
		_ = rt.Delete(context.WithoutCancel(ctx), rec.ID)
		return nil, crierr.ToStatus(err, "persist container")
	}
	m.containers.Add(rec.ID, c)
	m.emit(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, rec)
	m.nriEvent(ctx, api.Event_POST_CREATE_CONTAINER, rec)
	slog.Info("container created", "container", rec.ID, "sandbox", rec.SandboxID, "name", rec.Config.GetMetadata().GetName())
	return c, nil
}

// cdiDevices are the CDI devices cfg asks for, in cdi_devices or in
// cdi.k8s.io/ annotations, each known to a spec in runtime.cdi_spec_dirs.
func (m *Manager) cdiDevices(cfg *runtimeapi.ContainerConfig) ([]string, error) {
	req := cdi.Request{Annotations: cfg.GetAnnotations()}
	for _, d := range cfg.GetCDIDevices() {
		req.Devices = append(req.Devices, d.GetName())
	}
	names, err := m.cdi.Devices(req)
	var fe *cdi.FieldError
	if errors.As(err, &fe) {
		return nil, crierr.Invalid("config."+fe.Field, "%s", fe.Msg)
	}
	return names, err
}

func (m *Manager) containerInput(sr sandbox.Record, rec container.Record, img *image.ImageInfo, rootfs string) (*ocispec.ContainerInput, error) {
	sb, err := m.sandboxSpecInfo(sr, rec.Config)
	if err != nil {
		return nil, err
	}
	return &ocispec.ContainerInput{
		ID: rec.ID, Config: rec.Config, Image: img.Config, ImageName: rec.ImageName,
		Rootfs: rootfs, Sandbox: sb, Defaults: *m.defaults.Load(), VolumeDir: runtime.Bundle(rec.Bundle).VolumeDir(),
		PodPrivileged:                sr.Config.GetLinux().GetSecurityContext().GetPrivileged(),
		PrivilegedWithoutHostDevices: m.handlerConfig(sr.Handler).PrivilegedWithoutHostDevices,
	}, nil
}

// sandboxSpecInfo resolves what a container joins in its pod, including the
// PID namespace of the infra process or of a target container.
func (m *Manager) sandboxSpecInfo(sr sandbox.Record, cfg *runtimeapi.ContainerConfig) (ocispec.Sandbox, error) {
	info := ocispec.Sandbox{
		ID: sr.ID, Name: sr.Config.GetMetadata().GetName(), Namespace: sr.Config.GetMetadata().GetNamespace(),
		UID: sr.Config.GetMetadata().GetUid(), Hostname: hostname(sr.Config),
		NetNS: sr.NetNS, IPCNS: sr.IPCNS, UTSNS: sr.UTSNS, HostPID: sandbox.HostPID(sr.Config),
		HostsFile: sr.HostsFile, ResolvFile: sr.ResolvFile, HostnameFile: sr.HostnameFile, ShmPath: sr.ShmPath,
		CgroupParent: sr.Config.GetLinux().GetCgroupParent(), Sysctls: m.podSysctls(sr.Config),
		Annotations: sr.Config.GetAnnotations(), UserNS: sr.UserNS, SELinuxLabel: sr.SELinuxLabel,
	}
	info.AllowedAnnotations = m.handlerConfig(sr.Handler).AllowedAnnotations
	if sandbox.HostNetwork(sr.Config) {
		// The host's UTS namespace: runc refuses to set a hostname there.
		info.NetNS, info.UTSNS, info.Hostname = "", "", ""
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	switch nsOpts.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		if sr.InfraPid > 0 {
			info.PIDNS = fmt.Sprintf("/proc/%d/ns/pid", sr.InfraPid)
		}
	case runtimeapi.NamespaceMode_TARGET:
		t, err := m.containers.Get(nsOpts.GetTargetId())
		if err != nil {
			return info, crierr.ToStatus(err, "linux.security_context.namespace_options.target_id")
		}
		tr := t.Get()
		if tr.SandboxID != sr.ID || tr.Pid <= 0 {
			return info, crierr.Invalid("linux.security_context.namespace_options.target_id", "container %s is not a running container of this pod", tr.ID)
		}
		info.PIDNS = fmt.Sprintf("/proc/%d/ns/pid", tr.Pid)
	}
	return info, nil
}

// containersOf lists a sandbox's containers; the infra one only if asked.
func (m *Manager) containersOf(sandboxID string, withInfra bool) []*container.Container {
	var out []*container.Container
	for _, c := range m.containers.List() {
		r := c.Get()
		if r.SandboxID == sandboxID && (withInfra || !r.Infra) {
			out = append(out, c)
		}
	}
	return out
}

func imageIDMaps(in []netns.IDMap) []image.IDMap {
	out := make([]image.IDMap, 0, len(in))
	for _, m := range in {
		out = append(out, image.IDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}
