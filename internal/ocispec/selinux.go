package ocispec

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-tools/generate"
	"github.com/opencontainers/selinux/go-selinux"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setSELinux sets the process and mount labels from selinux_options (or
// the pod's label) when SELinux is enabled; otherwise it does nothing.
func setSELinux(g *generate.Generator, in *ContainerInput) error {
	if !hostSELinux() {
		return nil
	}
	// The pod's label is the base, so its containers share its MCS level;
	// the container's own options override parts of it, as in CRI-O.
	var opts []string
	if in.Sandbox.SELinuxLabel != "" {
		pod, err := selinux.DupSecOpt(in.Sandbox.SELinuxLabel)
		if err != nil {
			return fmt.Errorf("pod SELinux label %q: %w", in.Sandbox.SELinuxLabel, err)
		}
		opts = pod
	}
	opts = append(opts, selinuxOptions(in.Config.GetLinux().GetSecurityContext().GetSelinuxOptions())...)
	plabel, mlabel, err := selinuxInitLabels(opts)
	if err != nil {
		return fieldErr("linux.security_context.selinux_options", "%v", err)
	}
	g.SetProcessSelinuxLabel(plabel)
	g.SetLinuxMountLabel(mlabel)
	return nil
}

func selinuxOptions(o *runtimeapi.SELinuxOption) []string {
	var out []string
	for _, kv := range [][2]string{{"user", o.GetUser()}, {"role", o.GetRole()}, {"type", o.GetType()}, {"level", o.GetLevel()}} {
		if kv[1] != "" {
			out = append(out, kv[0]+":"+kv[1])
		}
	}
	return out
}

// PodSELinuxLabel is the process label for a pod with these options, for
// Sandbox.SELinuxLabel: "" when SELinux is disabled. Release it with
// ReleaseSELinuxLabel when the pod goes.
func PodSELinuxLabel(o *runtimeapi.SELinuxOption) (string, error) {
	if !hostSELinux() {
		return "", nil
	}
	plabel, _, err := selinuxInitLabels(selinuxOptions(o))
	return plabel, err
}

// selinuxRelease frees an MCS level; a variable for the unit tests.
var selinuxRelease = selinux.ReleaseLabel

// ReserveSELinuxLabel marks a restored pod's or container's MCS level as
// taken: the reservations live in memory and a restart loses them.
func ReserveSELinuxLabel(l string) {
	if l != "" && hostSELinux() {
		selinux.ReserveLabel(l)
	}
}

// ReleaseSELinuxLabel frees the MCS level of a pod's label (from
// PodSELinuxLabel) when the pod goes.
func ReleaseSELinuxLabel(l string) {
	if l != "" {
		selinuxRelease(l)
	}
}

// ReleaseContainerSELinuxLabel frees the MCS level of a container's label
// when the container goes, unless it is its pod's level, which the pod
// holds until it goes itself.
func ReleaseContainerSELinuxLabel(ctr, pod string) {
	if ctr == "" || selinuxLevel(ctr) == selinuxLevel(pod) {
		return
	}
	selinuxRelease(ctr)
}

// selinuxLevel is the MLS/MCS part of user:role:type:level.
func selinuxLevel(l string) string {
	if parts := strings.SplitN(l, ":", 4); len(parts) == 4 {
		return parts[3]
	}
	return ""
}
