package vmshim

import (
	"context"

	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Exec and CloseIO: processes in a running container.

func (s *service) Exec(ctx context.Context, r *taskv3.ExecProcessRequest) (*emptypb.Empty, error) {
	if r.Terminal {
		return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: exec with a terminal is not supported yet")
	}
	t, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	v, err := typeurl.UnmarshalAny(r.Spec)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "exec spec: %v", err)
	}
	ps, ok := v.(*specs.Process)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "exec spec is a %T, want an OCI process", v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.execs[r.ExecID] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "exec %s exists", r.ExecID)
	}
	t.execs[r.ExecID] = &process{id: r.ID, execID: r.ExecID, stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr,
		pid: t.pid, status: tasktypes.Status_CREATED, spec: ps, done: make(chan struct{})}
	return &emptypb.Empty{}, nil
}

func (s *service) CloseIO(ctx context.Context, r *taskv3.CloseIORequest) (*emptypb.Empty, error) {
	_, p, err := s.proc(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Stdin && p.io != nil {
		p.io.closeStdin()
	}
	return &emptypb.Empty{}, nil
}
