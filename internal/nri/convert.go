package nri

import (
	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandbox converts a sandbox record to what plugins see of a pod.
func PodSandbox(r sandbox.Record) *api.PodSandbox {
	md := r.Config.GetMetadata()
	p := &api.PodSandbox{
		Id:             r.ID,
		Name:           md.GetName(),
		Uid:            md.GetUid(),
		Namespace:      md.GetNamespace(),
		Labels:         r.Config.GetLabels(),
		Annotations:    r.Config.GetAnnotations(),
		RuntimeHandler: r.Handler,
		Pid:            uint32(max(r.InfraPid, 0)),
		Linux: &api.LinuxPodSandbox{
			CgroupParent: r.Config.GetLinux().GetCgroupParent(),
			Namespaces:   podNamespaces(r),
		},
	}
	if r.Network != nil && !sandbox.HostNetwork(r.Config) {
		p.Ips = append(p.Ips, r.Network.IPs...)
	}
	return p
}

func podNamespaces(r sandbox.Record) []*api.LinuxNamespace {
	var out []*api.LinuxNamespace
	for _, ns := range []struct{ typ, path string }{
		{string(specs.NetworkNamespace), r.NetNS},
		{string(specs.IPCNamespace), r.IPCNS},
		{string(specs.UTSNamespace), r.UTSNS},
		{string(specs.UserNamespace), r.UserNS},
	} {
		if ns.path != "" {
			out = append(out, &api.LinuxNamespace{Type: ns.typ, Path: ns.path})
		}
	}
	return out
}

// Container converts a container record and its OCI spec (nil when it
// could not be read) to what plugins see of a container.
func Container(r container.Record, spec *specs.Spec) *api.Container {
	c := &api.Container{
		Id:            r.ID,
		PodSandboxId:  r.SandboxID,
		Name:          r.Config.GetMetadata().GetName(),
		State:         containerState(r.State),
		Labels:        r.Config.GetLabels(),
		Annotations:   r.Config.GetAnnotations(),
		CreatedAt:     r.CreatedAt,
		StartedAt:     r.StartedAt,
		FinishedAt:    r.FinishedAt,
		ExitCode:      r.ExitCode,
		StatusReason:  r.Reason,
		StatusMessage: r.Message,
	}
	if r.User != nil {
		c.User = &api.User{Uid: r.User.UID, Gid: r.User.GID, AdditionalGids: r.User.Groups}
	}
	if spec == nil {
		return c
	}
	if len(spec.Annotations) > 0 {
		c.Annotations = spec.Annotations
	}
	c.Mounts = api.FromOCIMounts(spec.Mounts)
	c.Hooks = api.FromOCIHooks(spec.Hooks)
	if p := spec.Process; p != nil {
		c.Args, c.Env = p.Args, p.Env
		for _, l := range p.Rlimits {
			c.Rlimits = append(c.Rlimits, &api.POSIXRlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
		}
	}
	if l := spec.Linux; l != nil {
		c.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, spec.Annotations),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      l.Sysctl,
		}
		if p := spec.Process; p != nil && p.OOMScoreAdj != nil {
			c.Linux.OomScoreAdj = &api.OptionalInt{Value: int64(*p.OOMScoreAdj)}
		}
	}
	return c
}

func containerState(s runtimeapi.ContainerState) api.ContainerState {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return api.ContainerState_CONTAINER_CREATED
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return api.ContainerState_CONTAINER_RUNNING
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}
