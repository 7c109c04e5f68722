package integration

import (
	"errors"
	"io"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The streamed lists carry what the List calls return, and the kubelet's
// UpdateRuntimeConfig (the pod CIDR) is accepted.
func TestStreamedListsAndUpdateRuntimeConfig(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "streamed")
	pod := d.runPod(t, cfg)
	ctr := d.startContainer(t, pod, cfg, containerConfig("s", "sleep", "1000"))

	pods, err := d.rt.StreamPodSandboxes(ctx(t), &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var podIDs []string
	for {
		m, err := pods.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.GetPodSandboxes() {
			podIDs = append(podIDs, p.GetId())
		}
	}
	if len(podIDs) != 1 || podIDs[0] != pod {
		t.Errorf("streamed pods %v, want [%s]", podIDs, pod)
	}
	ctrs, err := d.rt.StreamContainers(ctx(t), &runtimeapi.StreamContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ctrs.Recv()
	if err != nil || len(m.GetContainers()) != 1 || m.GetContainers()[0].GetId() != ctr {
		t.Errorf("streamed containers %v, %v; want [%s]", m.GetContainers(), err, ctr)
	}
	imgs, err := d.img.StreamImages(ctx(t), &runtimeapi.StreamImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	im, err := imgs.Recv()
	if err != nil || len(im.GetImages()) != 1 {
		t.Errorf("streamed images %v, %v; want busybox", im.GetImages(), err)
	}
	_, err = d.rt.UpdateRuntimeConfig(ctx(t), &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.1.0.0/24"}},
	})
	if err != nil {
		t.Errorf("UpdateRuntimeConfig: %v", err)
	}
}
