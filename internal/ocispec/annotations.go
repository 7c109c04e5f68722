package ocispec

import (
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Annotation keys that Kata and other VM runtimes read (containerd's), and
// their CRI-O counterparts.
const (
	AnnContainerType    = "io.kubernetes.cri.container-type"
	AnnSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnContainerName    = "io.kubernetes.cri.container-name"
	AnnImageName        = "io.kubernetes.cri.image-name"

	AnnCrioType            = "io.kubernetes.cri-o.ContainerType"
	AnnCrioSandboxID       = "io.kubernetes.cri-o.SandboxID"
	AnnCrioSandboxName     = "io.kubernetes.cri-o.SandboxName"
	AnnCrioNamespace       = "io.kubernetes.cri-o.Namespace"
	AnnCrioName            = "io.kubernetes.cri-o.ContainerName"
	AnnCrioImageName       = "io.kubernetes.cri-o.ImageName"
	ContainerTypeSandbox   = "sandbox"
	ContainerTypeContainer = "container"
)

// setAnnotations copies the config's annotations and the pod's that the
// handler allows, and adds the runtime's own, which win over both.
func setAnnotations(g *generate.Generator, in *ContainerInput) {
	for k, v := range in.Sandbox.Annotations {
		if Allowed(in.Sandbox.AllowedAnnotations, k) {
			g.AddAnnotation(k, v)
		}
	}
	for k, v := range in.Config.GetAnnotations() {
		g.AddAnnotation(k, v)
	}
	name := in.Config.GetMetadata().GetName()
	sb := in.Sandbox
	for k, v := range map[string]string{
		AnnContainerType: ContainerTypeContainer, AnnCrioType: ContainerTypeContainer,
		AnnSandboxID: sb.ID, AnnCrioSandboxID: sb.ID,
		AnnSandboxName: sb.Name, AnnCrioSandboxName: sb.Name,
		AnnSandboxNamespace: sb.Namespace, AnnCrioNamespace: sb.Namespace,
		AnnSandboxUID:    sb.UID,
		AnnContainerName: name, AnnCrioName: name,
		AnnImageName: in.ImageName, AnnCrioImageName: in.ImageName,
	} {
		g.AddAnnotation(k, v)
	}
	if s := StopSignal(in.Config, in.Image); s != "" {
		g.AddAnnotation(AnnStopSignal, s)
	}
}

// Pod sizing on the sandbox spec, as containerd passes it: VM runtimes
// size the VM from it (the pod overhead plus its containers' limits,
// which the kubelet sends as the pod's resources).
const (
	AnnSandboxCPUPeriod = "io.kubernetes.cri.sandbox-cpu-period"
	AnnSandboxCPUQuota  = "io.kubernetes.cri.sandbox-cpu-quota"
	AnnSandboxCPUShares = "io.kubernetes.cri.sandbox-cpu-shares"
	AnnSandboxMemory    = "io.kubernetes.cri.sandbox-memory"
)

// Allowed reports whether an annotation key matches a list of names and
// prefixes ending in "*".
func Allowed(list []string, key string) bool {
	for _, p := range list {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(key, prefix) || p == key {
			return true
		}
	}
	return false
}

// MarkSandbox turns a container spec into the pod's sandbox (infra) spec,
// as VM runtimes tell them apart, with the pod's sizing (pod may be nil).
func MarkSandbox(s *specs.Spec, pod *runtimeapi.LinuxContainerResources) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	for k, v := range map[string]int64{
		AnnSandboxCPUPeriod: pod.GetCpuPeriod(), AnnSandboxCPUQuota: pod.GetCpuQuota(),
		AnnSandboxCPUShares: pod.GetCpuShares(), AnnSandboxMemory: pod.GetMemoryLimitInBytes(),
	} {
		if v > 0 {
			s.Annotations[k] = strconv.FormatInt(v, 10)
		}
	}
	s.Annotations[AnnContainerType] = ContainerTypeSandbox
	s.Annotations[AnnCrioType] = ContainerTypeSandbox
	delete(s.Annotations, AnnContainerName)
	delete(s.Annotations, AnnCrioName)
}
