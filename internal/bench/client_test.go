package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime answers the lifecycle calls and records them; failOn makes
// one call fail.
type fakeRuntime struct {
	runtimeapi.RuntimeServiceClient // calls not overridden panic
	calls                           []string
	failOn                          string
	pod                             *runtimeapi.PodSandboxConfig
	exit                            int32
}

func (f *fakeRuntime) rec(op string) error {
	f.calls = append(f.calls, op)
	time.Sleep(time.Millisecond)
	if op == f.failOn {
		return errors.New("injected")
	}
	return nil
}

func (f *fakeRuntime) RunPodSandbox(_ context.Context, in *runtimeapi.RunPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.RunPodSandboxResponse, error) {
	f.pod = in.GetConfig()
	if err := f.rec(OpRunPodSandbox); err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: "sb1"}, nil
}

func (f *fakeRuntime) CreateContainer(_ context.Context, in *runtimeapi.CreateContainerRequest, _ ...grpc.CallOption) (*runtimeapi.CreateContainerResponse, error) {
	if in.GetPodSandboxId() != "sb1" || in.GetSandboxConfig() != f.pod {
		return nil, errors.New("wrong sandbox")
	}
	if err := f.rec(OpCreateContainer); err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: "c1"}, nil
}

func (f *fakeRuntime) StartContainer(context.Context, *runtimeapi.StartContainerRequest, ...grpc.CallOption) (*runtimeapi.StartContainerResponse, error) {
	return &runtimeapi.StartContainerResponse{}, f.rec(OpStartContainer)
}

func (f *fakeRuntime) ExecSync(_ context.Context, in *runtimeapi.ExecSyncRequest, _ ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error) {
	if in.GetContainerId() != "c1" || !reflect.DeepEqual(in.GetCmd(), []string{"true"}) {
		return nil, errors.New("wrong exec")
	}
	return &runtimeapi.ExecSyncResponse{ExitCode: f.exit}, f.rec(OpExecSync)
}

func (f *fakeRuntime) StopContainer(_ context.Context, in *runtimeapi.StopContainerRequest, _ ...grpc.CallOption) (*runtimeapi.StopContainerResponse, error) {
	if in.GetTimeout() != 0 {
		return nil, errors.New("stop timeout is not 0")
	}
	return &runtimeapi.StopContainerResponse{}, f.rec(OpStopContainer)
}

func (f *fakeRuntime) RemoveContainer(context.Context, *runtimeapi.RemoveContainerRequest, ...grpc.CallOption) (*runtimeapi.RemoveContainerResponse, error) {
	return &runtimeapi.RemoveContainerResponse{}, f.rec(OpRemoveContainer)
}

func (f *fakeRuntime) StopPodSandbox(context.Context, *runtimeapi.StopPodSandboxRequest, ...grpc.CallOption) (*runtimeapi.StopPodSandboxResponse, error) {
	return &runtimeapi.StopPodSandboxResponse{}, f.rec(OpStopPodSandbox)
}

func (f *fakeRuntime) RemovePodSandbox(context.Context, *runtimeapi.RemovePodSandboxRequest, ...grpc.CallOption) (*runtimeapi.RemovePodSandboxResponse, error) {
	return &runtimeapi.RemovePodSandboxResponse{}, f.rec(OpRemovePodSandbox)
}

func newFakeBench(t *testing.T, f *fakeRuntime) (*bench, *client) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &client{t: Target{Name: "fake"}, rt: f, rpcTimeout: time.Minute, log: log}
	b := &bench{log: log, w: Workload{
		Image: "busybox", Command: []string{"sleep", "3600"}, Exec: []string{"true"}, RunID: "r",
		CgroupRoot: "/cradle-bench", LogRoot: t.TempDir(),
	}}
	return b, c
}

func TestIterationTimings(t *testing.T) {
	f := &fakeRuntime{}
	b, c := newFakeBench(t, f)
	tm := timings{}
	if err := b.iteration(context.Background(), c, Variants[1], tm); err != nil {
		t.Fatal(err)
	}
	want := []string{OpRunPodSandbox, OpCreateContainer, OpStartContainer, OpExecSync,
		OpStopContainer, OpRemoveContainer, OpStopPodSandbox, OpRemovePodSandbox}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	for _, op := range Ops {
		if tm[op] <= 0 {
			t.Errorf("%s not timed", op)
		}
	}
	if tm[OpContainerStart] != tm[OpCreateContainer]+tm[OpStartContainer] ||
		tm[OpPodStart] != tm[OpRunPodSandbox]+tm[OpContainerStart] ||
		tm[OpContainerRemove] != tm[OpStopContainer]+tm[OpRemoveContainer] ||
		tm[OpPodTeardown] != tm[OpContainerRemove]+tm[OpStopPodSandbox]+tm[OpRemovePodSandbox] {
		t.Errorf("composites are not the sums of their parts: %v", tm)
	}
	if got := f.pod.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid(); got != runtimeapi.NamespaceMode_POD {
		t.Errorf("pod PID mode %v", got)
	}
}

func TestIterationFailureCleansUp(t *testing.T) {
	for _, tc := range []struct {
		failOn string
		exit   int32
		want   []string
	}{
		{failOn: OpCreateContainer, want: []string{OpRunPodSandbox, OpCreateContainer, OpStopPodSandbox, OpRemovePodSandbox}},
		{exit: 1, want: []string{OpRunPodSandbox, OpCreateContainer, OpStartContainer, OpExecSync, OpStopPodSandbox, OpRemovePodSandbox}},
	} {
		f := &fakeRuntime{failOn: tc.failOn, exit: tc.exit}
		b, c := newFakeBench(t, f)
		if err := b.iteration(context.Background(), c, Variants[0], timings{}); err == nil {
			t.Errorf("failOn %q exit %d: no error", tc.failOn, tc.exit)
		}
		if !reflect.DeepEqual(f.calls, tc.want) {
			t.Errorf("failOn %q exit %d: calls %v, want %v", tc.failOn, tc.exit, f.calls, tc.want)
		}
	}
}
