package ocispec

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setNamespaces joins the pod's pinned network, IPC and UTS namespaces (or
// stays in the host's), gives the PID namespace the config asks for, and a
// user namespace when the config has mappings. The hostname is set only in
// the pod's own UTS namespace.
func setNamespaces(g *generate.Generator, in *ContainerInput) error {
	sb := in.Sandbox
	nsOpts := in.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	join := func(typ specs.LinuxNamespaceType, path string, host bool) {
		_ = g.RemoveLinuxNamespace(string(typ))
		if !host {
			_ = g.AddOrReplaceLinuxNamespace(string(typ), path)
		}
	}
	join(specs.NetworkNamespace, sb.NetNS, sb.NetNS == "")
	join(specs.IPCNamespace, sb.IPCNS, sb.IPCNS == "")
	join(specs.UTSNamespace, sb.UTSNS, sb.UTSNS == "")
	switch nsOpts.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		join(specs.PIDNamespace, "", true)
	case runtimeapi.NamespaceMode_CONTAINER:
		join(specs.PIDNamespace, "", false)
	default: // POD and TARGET: the server resolved the namespace to join
		join(specs.PIDNamespace, sb.PIDNS, sb.HostPID)
	}
	if hostCgroup2() {
		join(specs.CgroupNamespace, "", false)
	}
	if sb.UTSNS != "" && sb.Hostname != "" {
		g.SetHostname(sb.Hostname)
	}
	return setUserNamespace(g, in)
}

// setUserNamespace joins the pod's pinned user namespace, which owns the
// pod's other namespaces (sysfs and mqueue mount only from their owner).
// Every container of a pod with one joins it, and the spec carries no
// mappings: runc reads them from the namespace it joins, and giving them
// too is deprecated there. A config asking for mode POD must name valid
// mappings, and its pod must have a user namespace to join.
func setUserNamespace(g *generate.Generator, in *ContainerInput) error {
	const field = "linux.security_context.namespace_options.userns_options"
	_ = g.RemoveLinuxNamespace(string(specs.UserNamespace))
	g.Config.Linux.UIDMappings, g.Config.Linux.GIDMappings = nil, nil
	u := in.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if u != nil && u.GetMode() != runtimeapi.NamespaceMode_NODE {
		if u.GetMode() != runtimeapi.NamespaceMode_POD {
			return fieldErr(field+".mode", "user namespace mode %v is not supported; use POD or NODE", u.GetMode())
		}
		uids, err := idMappings(field+".uids", u.GetUids())
		if err != nil {
			return err
		}
		gids, err := idMappings(field+".gids", u.GetGids())
		if err != nil {
			return err
		}
		if len(uids) == 0 || len(gids) == 0 {
			return fieldErr(field, "mode POD needs uid and gid mappings")
		}
		if in.Sandbox.UserNS == "" {
			return fieldErr(field+".mode", "is POD, but the pod sandbox has no user namespace (set userns_options in the PodSandboxConfig)")
		}
	}
	if in.Sandbox.UserNS != "" {
		_ = g.AddOrReplaceLinuxNamespace(string(specs.UserNamespace), in.Sandbox.UserNS)
	}
	return nil
}

func idMappings(field string, ms []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
	var out []specs.LinuxIDMapping
	for i, m := range ms {
		if m.GetLength() == 0 {
			return nil, fieldErr(field+"["+strconv.Itoa(i)+"].length", "is zero")
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out, nil
}
