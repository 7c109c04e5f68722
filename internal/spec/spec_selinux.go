package spec

import (
	"fmt"

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
	opts := selinuxOptions(in.Config.GetLinux().GetSecurityContext().GetSelinuxOptions())
	if len(opts) == 0 && in.Sandbox.SELinuxLabel != "" {
		pod, err := selinux.DupSecOpt(in.Sandbox.SELinuxLabel)
		if err != nil {
			return fmt.Errorf("pod SELinux label %q: %w", in.Sandbox.SELinuxLabel, err)
		}
		opts = pod
	}
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

// ReleaseSELinuxLabel frees the MCS level of a label made by ContainerSpec
// or PodSELinuxLabel, for reuse.
func ReleaseSELinuxLabel(l string) {
	if l != "" {
		selinux.ReleaseLabel(l)
	}
}
