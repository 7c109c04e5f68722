// Package ocispec builds the OCI runtime spec from the CRI config. Building is
// pure; PrepareHost alone creates what the spec points at on the host
// (image volume and mount source directories).
package ocispec

import (
	"fmt"

	"github.com/cradle-runtime/cradle/internal/validate"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FieldError is bad input in a named CRI field; the server maps it to
// InvalidArgument. It is validate's type: one refusal, whether found up
// front or while building the spec.
type FieldError = validate.Error

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// HostError is a request the host can't serve, such as a limit for a cgroup
// controller it lacks; the server maps it to FailedPrecondition.
type HostError struct {
	Field string
	Msg   string
}

func (e *HostError) Error() string { return e.Field + ": " + e.Msg }

func hostErr(field, format string, a ...any) error {
	return &HostError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Sandbox is what a container takes from its pod.
type Sandbox struct {
	ID, Name, Namespace, UID string
	Hostname                 string
	NetNS, IPCNS, UTSNS      string // pinned paths; "" means the host's
	UserNS                   string // the pod's pinned user namespace, which every container joins; "" for none
	PIDNS                    string // a PID namespace to join; "" with HostPID false means a new one
	HostPID                  bool
	HostsFile, ResolvFile    string
	HostnameFile, ShmPath    string
	CgroupParent             string
	Sysctls                  map[string]string
	// Annotations are the pod's (PodSandboxConfig.annotations): the
	// deprecated seccomp annotations are read from them.
	Annotations map[string]string
	// AllowedAnnotations are the handler's allowed_annotations: the pod
	// annotations (a name, or a prefix ending in "*") that reach the
	// runtime in every spec of the pod. Kata, for one, reads its
	// io.katacontainers.* settings from there.
	AllowedAnnotations []string
	// SELinuxLabel is the pod's process label, if it has one: a container
	// without selinux_options takes its user, role, type and level, so the
	// pod's containers share one MCS level. Unused when SELinux is off.
	SELinuxLabel string
}

// Cgroup drivers.
const (
	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"
)

// Defaults are daemon-wide settings that shape every spec.
type Defaults struct {
	Capabilities   []string // the default set, "CAP_" names; nil means DefaultCapabilities
	Bounding       []string // the daemon's bounding set: what privileged gets; nil means BoundingSet()
	MinOOMScoreAdj int      // the lowest oom_score_adj the daemon may set
	Rlimits        []specs.POSIXRlimit
	PidsLimit      int64
	// CgroupDriver is CgroupDriverCgroupfs ("" too) or CgroupDriverSystemd.
	CgroupDriver string
	// CgroupParent is the parent for pods that give none: a path for
	// cgroupfs, a slice for systemd. "" means /cradle or system.slice.
	CgroupParent string
	// SeccompProfile is the RuntimeDefault profile (moby JSON) from
	// runtime.seccomp_profile; empty means the built-in moby default.
	SeccompProfile string
	// DeviceOwnershipFromSecurityContext gives the config's devices the
	// container's uid and gid when it runs as non-root, so that it can use
	// them (runtime.device_ownership_from_security_context).
	DeviceOwnershipFromSecurityContext bool
}

// ContainerInput is everything ContainerSpec needs. ContainerSpec does no
// I/O beyond reading the image's /etc/passwd and /etc/group under Rootfs,
// profile files named by the config, and looking at the host (host paths,
// devices, mount propagation, AppArmor, SELinux, cgroups). What must be
// created on the host is PrepareHost's job.
type ContainerInput struct {
	ID        string
	Config    *runtimeapi.ContainerConfig
	Image     imgspecv1.ImageConfig
	ImageName string
	Rootfs    string
	Sandbox   Sandbox
	Defaults  Defaults
	// Privileged is allowed only when the pod is privileged.
	PodPrivileged bool
	// PrivilegedWithoutHostDevices is the handler's option: a privileged
	// container gets no host devices (a VM has devices of its own).
	PrivilegedWithoutHostDevices bool
	// VolumeDir is this container's own directory for the image's VOLUMEs:
	// each gets a subdirectory, created by PrepareHost. "" leaves the
	// image's VOLUMEs as plain directories of the rootfs.
	VolumeDir string
	// ImageVolumes are the host paths of the config's image mounts, by
	// mount index, as the image service mounted them read-only.
	ImageVolumes map[int]string
}

// ContainerSpec turns a CRI ContainerConfig into an OCI runtime spec.
func ContainerSpec(in *ContainerInput) (*specs.Spec, error) {
	if in.Config == nil {
		return nil, fieldErr("config", "is required")
	}
	g := generate.NewFromSpec(baseSpec(in))
	g.HostSpecific = false
	steps := []func(*generate.Generator, *ContainerInput) error{
		setProcess,
		setUser,
		setNamespaces,
		setMounts,
		setSecurity,
		setResources,
		setDevices,
	}
	for _, step := range steps {
		if err := step(&g, in); err != nil {
			return nil, err
		}
	}
	for k, v := range in.Sandbox.Sysctls {
		g.AddLinuxSysctl(k, v)
	}
	setAnnotations(&g, in)
	return g.Config, nil
}
