package vmshim

import (
	"context"
	"os"

	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Calls about the shim itself.

func (s *service) Connect(ctx context.Context, r *taskv3.ConnectRequest) (*taskv3.ConnectResponse, error) {
	resp := &taskv3.ConnectResponse{ShimPid: uint32(os.Getpid()), Version: "cradle-shim-vm"}
	if t, err := s.get(r.ID); err == nil {
		resp.TaskPid = t.pid
	}
	return resp, nil
}

func (s *service) Shutdown(ctx context.Context, r *taskv3.ShutdownRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	n := len(s.tasks)
	s.mu.Unlock()
	if n == 0 {
		select {
		case <-s.shutdown:
		default:
			close(s.shutdown)
		}
	}
	return &emptypb.Empty{}, nil
}

func (s *service) Pids(ctx context.Context, r *taskv3.PidsRequest) (*taskv3.PidsResponse, error) {
	t, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	return &taskv3.PidsResponse{Processes: []*tasktypes.ProcessInfo{{Pid: t.pid}}}, nil
}
