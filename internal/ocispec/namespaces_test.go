package ocispec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func pidMode(m runtimeapi.NamespaceMode) func(*ContainerInput) {
	return func(in *ContainerInput) { secCtx(in).NamespaceOptions.Pid = m }
}

func userns(u *runtimeapi.UserNamespace) func(*ContainerInput) {
	return func(in *ContainerInput) { secCtx(in).NamespaceOptions.UsernsOptions = u }
}

func podUserns() *runtimeapi.UserNamespace {
	return &runtimeapi.UserNamespace{
		Mode: runtimeapi.NamespaceMode_POD,
		Uids: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}},
		Gids: []*runtimeapi.IDMapping{{HostId: 200000, ContainerId: 0, Length: 1000}, {HostId: 300000, ContainerId: 1000, Length: 64536}},
	}
}

// withNS sets the golden namespace of a type: path "" for a new one,
// "host" for none.
func withNS(typ specs.LinuxNamespaceType, path string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == typ {
				if path == "host" {
					s.Linux.Namespaces = append(s.Linux.Namespaces[:i], s.Linux.Namespaces[i+1:]...)
				} else {
					s.Linux.Namespaces[i].Path = path
				}
				return
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
	}
}

func TestNamespaces(t *testing.T) {
	runSpecCases(t, []specCase{
		{
			name: "host network: no network or UTS namespace, no hostname",
			in:   func(in *ContainerInput) { in.Sandbox.NetNS, in.Sandbox.UTSNS, in.Sandbox.Hostname = "", "", "node1" },
			want: func(s *specs.Spec) {
				withNS(specs.NetworkNamespace, "host")(s)
				withNS(specs.UTSNamespace, "host")(s)
				s.Hostname = ""
				s.Process.Env[1] = "HOSTNAME=node1"
			},
		},
		{
			name: "host IPC",
			in:   func(in *ContainerInput) { in.Sandbox.IPCNS = "" },
			want: withNS(specs.IPCNamespace, "host"),
		},
		{name: "PID: the host's", in: pidMode(runtimeapi.NamespaceMode_NODE), want: withNS(specs.PIDNamespace, "host")},
		{
			name: "PID: the pod's",
			in: func(in *ContainerInput) {
				pidMode(runtimeapi.NamespaceMode_POD)(in)
				in.Sandbox.PIDNS = "/proc/42/ns/pid"
			},
			want: withNS(specs.PIDNamespace, "/proc/42/ns/pid"),
		},
		{
			name: "PID: a target container's",
			in: func(in *ContainerInput) {
				pidMode(runtimeapi.NamespaceMode_TARGET)(in)
				in.Sandbox.PIDNS = "/proc/43/ns/pid"
			},
			want: withNS(specs.PIDNamespace, "/proc/43/ns/pid"),
		},
		{
			name: "PID: the pod's, which is the host's",
			in: func(in *ContainerInput) {
				pidMode(runtimeapi.NamespaceMode_POD)(in)
				in.Sandbox.HostPID = true
			},
			want: withNS(specs.PIDNamespace, "host"),
		},
		{
			name: "PID: container mode ignores the pod's",
			in:   func(in *ContainerInput) { in.Sandbox.PIDNS = "/proc/42/ns/pid" },
		},
		{
			name: "cgroup v2: a cgroup namespace",
			host: func(h *testHost) { h.cgroup2 = true },
			want: withNS(specs.CgroupNamespace, ""),
		},
		{
			name: "user namespace: the pod's pinned one, without mappings",
			in: func(in *ContainerInput) {
				userns(podUserns())(in)
				in.Sandbox.UserNS = "/run/cradle/ns/user-1"
			},
			want: withNS(specs.UserNamespace, "/run/cradle/ns/user-1"),
		},
		{
			name: "user namespace: a container of a pod with one joins it",
			in:   func(in *ContainerInput) { in.Sandbox.UserNS = "/run/cradle/ns/user-1" },
			want: withNS(specs.UserNamespace, "/run/cradle/ns/user-1"),
		},
		{
			name: "user namespace: mode NODE is none",
			in:   userns(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}),
		},
	})
	runErrCases(t, []errCase{
		{
			name:  "user namespace without mappings",
			in:    userns(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}),
			field: "linux.security_context.namespace_options.userns_options", msg: "needs uid and gid mappings",
		},
		{
			name: "user namespace: zero-length mapping",
			in: userns(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
				Uids: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}, Gids: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}, {HostId: 2}}}),
			field: "linux.security_context.namespace_options.userns_options.gids[1].length", msg: "is zero",
		},
		{
			name:  "user namespace: mode POD in a pod without one",
			in:    userns(podUserns()),
			field: "linux.security_context.namespace_options.userns_options.mode", msg: "has no user namespace",
		},
		{
			name:  "user namespace: mode CONTAINER",
			in:    userns(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}),
			field: "linux.security_context.namespace_options.userns_options.mode", msg: "not supported",
		},
	})
}
