package vmshim

import (
	"context"

	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The task API calls the microVM does not serve yet (docs/microvm.md).

func (s *service) Stats(context.Context, *taskv3.StatsRequest) (*taskv3.StatsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: stats are not implemented yet")
}

func (s *service) Update(context.Context, *taskv3.UpdateTaskRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: resource updates (CPU/memory hotplug) are not implemented yet")
}

func (s *service) Pause(context.Context, *taskv3.PauseRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: pause is not supported")
}

func (s *service) Resume(context.Context, *taskv3.ResumeRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: resume is not supported")
}

func (s *service) Checkpoint(context.Context, *taskv3.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: checkpoint is not supported")
}

func (s *service) ResizePty(context.Context, *taskv3.ResizePtyRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: terminals are not supported yet")
}
