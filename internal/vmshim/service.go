package vmshim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/cradle-runtime/cradle/internal/agent/api"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/vmshim/vm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func init() {
	typeurl.Register(&specs.Process{}, "types.containerd.io", "opencontainers/runtime-spec", "1", "Process")
}

// process is a task's init or an exec.
type process struct {
	id, execID            string
	stdin, stdout, stderr string
	pid                   uint32
	status                tasktypes.Status
	spec                  *specs.Process // execs
	io                    *pumps
	done                  chan struct{}
	exitStatus            uint32
	exitedAt              time.Time
}

func (p *process) exit(code uint32, at time.Time) {
	p.exitStatus, p.exitedAt, p.status = code, at, tasktypes.Status_STOPPED
	close(p.done)
}

// task is one container (or the sandbox, which is the VM).
type task struct {
	process
	bundle  string
	sandbox bool
	execs   map[string]*process
}

type service struct {
	f        flags
	dir      string // the pod's state: VM dir, share
	opts     options
	srv      *ttrpc.Server
	shutdown chan struct{}
	events   *publisher

	mu    sync.Mutex
	vm    *vm.VM
	netns string
	tasks map[string]*task
}

var _ taskv3.TTRPCTaskService = (*service)(nil)

func newService(f flags, dir string) (*service, error) {
	o, err := loadOptions()
	if err != nil {
		return nil, err
	}
	return &service{f: f, dir: dir, opts: o, shutdown: make(chan struct{}), tasks: map[string]*task{},
		events: newPublisher(f.namespace)}, nil
}

func (s *service) run(l net.Listener) error {
	srv, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	s.srv = srv
	taskv3.RegisterTTRPCTaskService(srv, s)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), l) }()
	slog.Info("cradle-shim-vm serving", "socket", socketPath(s.dir), "pid", os.Getpid())
	select {
	case err := <-errc:
		return err
	case <-s.shutdown:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = os.Remove(socketPath(s.dir))
	slog.Info("cradle-shim-vm exiting")
	return nil
}

func (s *service) get(id string) (*task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[id]
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "task %s not found", id)
	}
	return t, nil
}

func (s *service) proc(id, execID string) (*task, *process, error) {
	t, err := s.get(id)
	if err != nil {
		return nil, nil, err
	}
	if execID == "" {
		return t, &t.process, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := t.execs[execID]
	if p == nil {
		return nil, nil, status.Errorf(codes.NotFound, "exec %s of %s not found", execID, id)
	}
	return t, p, nil
}

func (s *service) agent() (*api.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vm == nil {
		return nil, status.Error(codes.FailedPrecondition, "the pod's VM is not running: create the sandbox task first")
	}
	return s.vm.Agent, nil
}

// vmRunning reports a VM whose agent can still answer: after the
// sandbox's Kill, its containers went with it.
func (s *service) vmRunning() bool {
	s.mu.Lock()
	v := s.vm
	s.mu.Unlock()
	if v == nil {
		return false
	}
	select {
	case <-v.Exited():
		return false
	default:
		return !v.Stopping()
	}
}

func netnsPath(sp *specs.Spec) string {
	if sp.Linux == nil {
		return ""
	}
	for _, n := range sp.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			return n.Path
		}
	}
	return ""
}

func (s *service) Create(ctx context.Context, r *taskv3.CreateTaskRequest) (*taskv3.CreateTaskResponse, error) {
	if r.Terminal {
		return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: terminal (tty) containers are not supported yet")
	}
	if len(r.Rootfs) > 0 {
		return nil, status.Error(codes.Unimplemented, "cradle-shim-vm: rootfs mounts are not supported; mount the bundle's rootfs first")
	}
	if err := validID(r.ID); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sp, err := readSpec(r.Bundle)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	t := &task{process: process{id: r.ID, stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr,
		status: tasktypes.Status_CREATED, done: make(chan struct{})}, bundle: r.Bundle, execs: map[string]*process{}}
	t.sandbox = sp.Annotations[ocispec.AnnContainerType] == ocispec.ContainerTypeSandbox
	s.mu.Lock()
	if s.tasks[r.ID] != nil {
		s.mu.Unlock()
		return nil, status.Errorf(codes.AlreadyExists, "task %s exists", r.ID)
	}
	s.tasks[r.ID] = t // reserved; removed again on failure
	s.mu.Unlock()
	fail := func(err error) (*taskv3.CreateTaskResponse, error) {
		s.mu.Lock()
		delete(s.tasks, r.ID)
		s.mu.Unlock()
		return nil, err
	}
	if t.sandbox {
		v, err := s.bootVM(ctx, sp)
		if err != nil {
			return fail(status.Errorf(codes.Internal, "boot the pod's VM: %v", err))
		}
		t.pid = uint32(v.Pid())
		go func() {
			<-v.Exited()
			s.mu.Lock()
			defer s.mu.Unlock()
			if t.status != tasktypes.Status_STOPPED {
				t.exit(vmExitStatus(v), time.Now())
				s.events.exit(t.id, t.id, t.pid, t.exitStatus, t.exitedAt)
			}
		}()
		return &taskv3.CreateTaskResponse{Pid: t.pid}, nil
	}
	a, err := s.agent()
	if err != nil {
		return fail(err)
	}
	t0 := time.Now()
	if err := s.createContainer(ctx, a, r, sp); err != nil {
		_ = unshareContainer(s.shareDir(), r.ID)
		return fail(err)
	}
	// The daemon keeps a shim line's msg only: the figures go in it.
	slog.Info(fmt.Sprintf("container %s created in the VM in %s", r.ID, time.Since(t0).Round(time.Millisecond)))
	s.mu.Lock()
	t.pid = uint32(s.vm.Pid())
	s.mu.Unlock()
	return &taskv3.CreateTaskResponse{Pid: t.pid}, nil
}

// vmExitStatus is the sandbox task's exit: 0 for a clean power-off.
func vmExitStatus(v *vm.VM) uint32 {
	if v.Err() == nil {
		return 0
	}
	return 255
}

func (s *service) shareDir() string { return filepath.Join(s.dir, "share") }

func (s *service) createContainer(ctx context.Context, a *api.Client, r *taskv3.CreateTaskRequest, sp *specs.Spec) error {
	root := sp.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(r.Bundle, root)
	}
	if err := shareContainer(s.shareDir(), r.ID, root, sp); err != nil {
		return status.Errorf(codes.Internal, "share the rootfs: %v", err)
	}
	data, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	req := api.CreateContainerRequest{ID: r.ID, Rootfs: r.ID + "/rootfs", Spec: data}
	return a.Call(ctx, api.MCreateContainer, req, nil)
}

func (s *service) Start(ctx context.Context, r *taskv3.StartRequest) (*taskv3.StartResponse, error) {
	t, p, err := s.proc(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if t.sandbox && r.ExecID == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		if p.status == tasktypes.Status_CREATED {
			p.status = tasktypes.Status_RUNNING
		}
		return &taskv3.StartResponse{Pid: p.pid}, nil
	}
	if t.sandbox {
		return nil, status.Error(codes.Unimplemented, "exec in the sandbox task: it is the VM, not a container")
	}
	a, err := s.agent()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if p.status != tasktypes.Status_CREATED {
		s.mu.Unlock()
		return nil, status.Errorf(codes.FailedPrecondition, "process %s/%s is %s", r.ID, r.ExecID, p.status)
	}
	p.status = tasktypes.Status_RUNNING // claimed; a second Start fails
	s.mu.Unlock()
	req := api.StartRequest{ID: r.ID, ExecID: r.ExecID, Stdin: p.stdin != ""}
	if p.spec != nil {
		if req.Process, err = json.Marshal(p.spec); err != nil {
			return nil, err
		}
	}
	var rep api.StartReply
	t0 := time.Now()
	if err := a.Call(ctx, api.MStart, req, &rep); err != nil {
		s.mu.Lock()
		p.status = tasktypes.Status_CREATED
		s.mu.Unlock()
		return nil, err
	}
	ref := api.ProcessRef{ID: r.ID, ExecID: r.ExecID}
	pio, err := startPumps(a, ref, p.stdin, p.stdout, p.stderr)
	if err != nil {
		slog.Warn("process stdio", "id", r.ID, "exec", r.ExecID, "error", err)
	}
	p.io = pio
	go s.waitExit(a, ref, p)
	slog.Info(fmt.Sprintf("process %s/%s started in the VM in %s (guest pid %d)", r.ID, r.ExecID, time.Since(t0).Round(time.Millisecond), rep.Pid))
	return &taskv3.StartResponse{Pid: p.pid}, nil
}

// waitExit records the process's exit once its output is drained.
func (s *service) waitExit(a *api.Client, ref api.ProcessRef, p *process) {
	var w api.WaitReply
	err := a.Call(context.Background(), api.MWait, ref, &w)
	if err != nil {
		// The VM is gone: the process with it.
		w = api.WaitReply{ExitStatus: 128 + int(syscall.SIGKILL), ExitedAtNs: time.Now().UnixNano()}
	}
	if p.io != nil {
		p.io.wait(2 * time.Second)
	}
	s.mu.Lock()
	p.exit(uint32(w.ExitStatus), time.Unix(0, w.ExitedAtNs))
	s.mu.Unlock()
	id := ref.ExecID
	if id == "" {
		id = ref.ID
	}
	s.events.exit(ref.ID, id, p.pid, p.exitStatus, p.exitedAt)
	slog.Info("exited", "id", ref.ID, "exec", ref.ExecID, "status", w.ExitStatus)
}

func (s *service) Kill(ctx context.Context, r *taskv3.KillRequest) (*emptypb.Empty, error) {
	t, p, err := s.proc(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if t.sandbox && r.ExecID == "" {
		// Killing the sandbox powers the VM off.
		s.mu.Lock()
		v := s.vm
		s.mu.Unlock()
		if v != nil {
			go s.stopVM(v, 10*time.Second)
		}
		return &emptypb.Empty{}, nil
	}
	a, err := s.agent()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	st := p.status
	s.mu.Unlock()
	if st != tasktypes.Status_RUNNING {
		return nil, status.Errorf(codes.NotFound, "process %s/%s is not running", r.ID, r.ExecID)
	}
	req := api.SignalRequest{ProcessRef: api.ProcessRef{ID: r.ID, ExecID: r.ExecID}, Signal: int(r.Signal), All: r.All}
	if err := a.Call(ctx, api.MSignal, req, nil); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// stopVM powers the VM off; its exit ends the sandbox task.
func (s *service) stopVM(v *vm.VM, timeout time.Duration) {
	if err := v.Shutdown(context.Background(), timeout); err != nil {
		slog.Warn("vm shutdown", "error", err)
	}
}

func (s *service) Wait(ctx context.Context, r *taskv3.WaitRequest) (*taskv3.WaitResponse, error) {
	_, p, err := s.proc(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &taskv3.WaitResponse{ExitStatus: p.exitStatus, ExitedAt: timestamppb.New(p.exitedAt)}, nil
}

func (s *service) State(ctx context.Context, r *taskv3.StateRequest) (*taskv3.StateResponse, error) {
	t, p, err := s.proc(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &taskv3.StateResponse{ID: r.ID, ExecID: r.ExecID, Bundle: t.bundle, Pid: p.pid, Status: p.status,
		Stdin: p.stdin, Stdout: p.stdout, Stderr: p.stderr}
	if p.status == tasktypes.Status_STOPPED {
		resp.ExitStatus, resp.ExitedAt = p.exitStatus, timestamppb.New(p.exitedAt)
	}
	return resp, nil
}

func (s *service) Delete(ctx context.Context, r *taskv3.DeleteRequest) (*taskv3.DeleteResponse, error) {
	t, p, err := s.proc(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	st := p.status
	s.mu.Unlock()
	if st == tasktypes.Status_RUNNING {
		return nil, status.Errorf(codes.FailedPrecondition, "process %s/%s is running: kill it first", r.ID, r.ExecID)
	}
	resp := &taskv3.DeleteResponse{Pid: p.pid, ExitStatus: p.exitStatus, ExitedAt: timestamppb.New(p.exitedAt)}
	if r.ExecID != "" {
		if a, err := s.agent(); err == nil {
			_ = a.Call(ctx, api.MDelete, api.ProcessRef{ID: r.ID, ExecID: r.ExecID}, nil)
		}
		s.mu.Lock()
		delete(t.execs, r.ExecID)
		s.mu.Unlock()
		return resp, nil
	}
	if t.sandbox {
		s.mu.Lock()
		v := s.vm
		s.vm = nil
		s.mu.Unlock()
		if v != nil {
			s.stopVM(v, 10*time.Second)
		}
		// Containers cannot outlive their VM. One the daemon never
		// deleted (it exited before a daemon restart, and the daemon
		// does not restore exited containers) would keep the shim from
		// shutting down: it goes with the sandbox.
		s.mu.Lock()
		for id, o := range s.tasks {
			if !o.sandbox {
				slog.Info(fmt.Sprintf("container %s removed with the pod's VM", id))
				delete(s.tasks, id)
			}
		}
		s.mu.Unlock()
		if err := removePod(s.dir, s.netns); err != nil {
			return nil, status.Errorf(codes.Internal, "remove the pod's VM state: %v", err)
		}
	} else {
		if a, err := s.agent(); err == nil && s.vmRunning() {
			if err := a.Call(ctx, api.MDelete, api.ProcessRef{ID: r.ID}, nil); err != nil &&
				status.Code(err) != codes.NotFound && !errors.Is(err, ttrpc.ErrClosed) {
				return nil, err
			}
		}
		if err := unshareContainer(s.shareDir(), r.ID); err != nil {
			return nil, status.Errorf(codes.Internal, "unmount the shared rootfs: %v", err)
		}
	}
	s.mu.Lock()
	delete(s.tasks, r.ID)
	s.mu.Unlock()
	return resp, nil
}
