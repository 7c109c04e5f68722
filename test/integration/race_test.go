package integration

import (
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCreateContainerRacesStopPodSandbox runs CreateContainer and
// StopPodSandbox of the same pod at once, many times. Either the create
// comes first and the stop stops its container, or the stop comes first
// and the create is refused as FailedPrecondition. A container left
// CREATED in a stopped pod is the bug this guards against.
func TestCreateContainerRacesStopPodSandbox(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	const rounds = 15
	refused, stopped := 0, 0
	for i := range rounds {
		cfg := d.podConfig(t, "race")
		pod := d.runPod(t, cfg)
		var wg sync.WaitGroup
		var created *runtimeapi.CreateContainerResponse
		var createErr, stopErr error
		wg.Go(func() {
			created, createErr = d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
				PodSandboxId: pod, Config: containerConfig("c", "sleep", "60"), SandboxConfig: cfg,
			})
		})
		wg.Go(func() {
			_, stopErr = d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod})
		})
		wg.Wait()
		if stopErr != nil {
			t.Fatalf("round %d: StopPodSandbox: %v", i, stopErr)
		}
		switch {
		case createErr != nil:
			if status.Code(createErr) != codes.FailedPrecondition {
				t.Fatalf("round %d: CreateContainer: %v, want FailedPrecondition or success", i, createErr)
			}
			refused++
		default:
			st := d.containerStatus(t, created.GetContainerId())
			if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Fatalf("round %d: container %s is %s in a stopped pod", i, created.GetContainerId(), st.GetState())
			}
			stopped++
		}
		d.removePod(t, pod)
	}
	t.Logf("%d rounds: %d creates refused, %d containers stopped with the pod", rounds, refused, stopped)
	d.assertNoLeaks()
}
