package ocispec

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodSELinuxLevelShared follows one pod on an SELinux host: its
// containers get the pod's MCS level, a container with a level of its own
// gives that level back when it goes, and the pod's level is freed only
// with the pod.
func TestPodSELinuxLevelShared(t *testing.T) {
	var released []string
	prev := selinuxRelease
	t.Cleanup(func() { selinuxRelease = prev })
	selinuxRelease = func(l string) { released = append(released, l) }

	onSELinux := func(h *testHost) { h.selinux = true }
	useHost(t, testHost{selinux: true})
	podLabel, err := PodSELinuxLabel(&runtimeapi.SELinuxOption{Level: "s0:c3,c4"})
	if err != nil || podLabel == "" {
		t.Fatalf("PodSELinuxLabel = %q, %v", podLabel, err)
	}
	labelOf := func(opts *runtimeapi.SELinuxOption) string {
		in := caseInput(t, onSELinux, func(in *ContainerInput) {
			in.Sandbox.SELinuxLabel = podLabel
			in.Config.Linux.SecurityContext.SelinuxOptions = opts
		})
		s, err := ContainerSpec(in)
		if err != nil {
			t.Fatal(err)
		}
		return s.Process.SelinuxLabel
	}
	plain := labelOf(nil)
	typed := labelOf(&runtimeapi.SELinuxOption{Type: "other_t"})
	own := labelOf(&runtimeapi.SELinuxOption{Level: "s0:c8,c9"})
	for _, l := range []string{plain, typed} {
		if selinuxLevel(l) != "s0:c3,c4" {
			t.Errorf("container label %q: want the pod's level s0:c3,c4", l)
		}
	}
	if selinuxLevel(own) != "s0:c8,c9" {
		t.Errorf("container label %q: want its own level", own)
	}
	for _, l := range []string{plain, typed, own} {
		ReleaseContainerSELinuxLabel(l, podLabel)
	}
	if !slices.Equal(released, []string{own}) {
		t.Fatalf("released %q when the containers went; want only %q", released, own)
	}
	ReleaseSELinuxLabel(podLabel)
	if !slices.Equal(released, []string{own, podLabel}) {
		t.Fatalf("released %q; want the pod's label last", released)
	}
}
