package integration

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CheckpointContainer says it is unimplemented and why (CRIU on this
// kernel), and leaves the container running.
func TestCheckpointContainerUnimplemented(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "ckpt")
	pod := d.runPod(t, podCfg)
	id := d.startContainer(t, pod, podCfg, containerConfig("ckpt", "sleep", "1000"))

	_, err := d.rt.CheckpointContainer(ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: t.TempDir() + "/ckpt.tar"})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), "CRIU") {
		t.Fatalf("CheckpointContainer: %v; want Unimplemented naming CRIU", err)
	}
	if st := d.containerStatus(t, id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after the refused checkpoint the container is %v", st.GetState())
	}
	_, err = d.rt.CheckpointContainer(ctx(t), &runtimeapi.CheckpointContainerRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "container_id") {
		t.Errorf("CheckpointContainer without an ID: %v; want InvalidArgument naming container_id", err)
	}
}
