package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/ttrpc"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The task API exists twice: containerd.task.v2.Task (shims built on
// containerd 1.x, Kata and gVisor among them) and containerd.task.v3.Task
// (2.x shims), with the same messages generated as separate types. The
// backend talks to taskAPI; v2Task and v3Task translate.
type taskAPI interface {
	Create(ctx context.Context, r createReq) (uint32, error)
	Start(ctx context.Context, id, execID string) (uint32, error)
	State(ctx context.Context, id, execID string) (taskState, error)
	Kill(ctx context.Context, id, execID string, sig uint32, all bool) error
	Delete(ctx context.Context, id, execID string) (exitStatus, error)
	Exec(ctx context.Context, r execReq) error
	ResizePty(ctx context.Context, id, execID string, width, height uint32) error
	CloseIO(ctx context.Context, id, execID string) error
	Update(ctx context.Context, id string, res *anypb.Any) error
	Wait(ctx context.Context, id, execID string) (exitStatus, error)
	Connect(ctx context.Context, id string) (shimPid, taskPid uint32, err error)
	Shutdown(ctx context.Context, id string) error
}

type createReq struct {
	ID, Bundle            string
	Stdin, Stdout, Stderr string
	Terminal              bool
	Options               *anypb.Any
}

type execReq struct {
	ID, ExecID            string
	Stdin, Stdout, Stderr string
	Terminal              bool
	Spec                  *anypb.Any
}

type taskState struct {
	Status                tasktypes.Status
	Pid                   uint32
	Exit                  exitStatus
	Stdin, Stdout, Stderr string
	Terminal              bool
}

type exitStatus struct {
	Pid  uint32
	Code uint32
	At   time.Time
}

func exitFrom(pid, code uint32, at *timestamppb.Timestamp) exitStatus {
	e := exitStatus{Pid: pid, Code: code}
	if at != nil {
		e.At = at.AsTime()
	}
	return e
}

// nsKey is the ttrpc metadata key containerd's namespace package reads.
const nsKey = "containerd-namespace-ttrpc"

func withNamespace(ctx context.Context, ns string) context.Context {
	return ttrpc.WithMetadata(ctx, ttrpc.MD{nsKey: []string{ns}})
}

// newTaskAPI picks the API the shim's start reply announced.
func newTaskAPI(cl *ttrpc.Client, version int, ns string) (taskAPI, error) {
	switch version {
	case 2:
		return v2Task{c: taskv2.NewTTRPCTaskClient(cl), ns: ns}, nil
	case 3:
		return v3Task{c: taskv3.NewTTRPCTaskClient(cl), ns: ns}, nil
	}
	return nil, fmt.Errorf("shim task API version %d is not supported", version)
}

// dial connects to a shim's address: unix://path (also ttrpc+unix://),
// or a bare name, which old shims use for an abstract socket.
func dial(ctx context.Context, addr string, onClose func()) (*ttrpc.Client, error) {
	path := socketPath(addr)
	if !strings.Contains(addr, "://") {
		path = "\x00" + addr
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial shim %s: %w", addr, err)
	}
	return ttrpc.NewClient(conn, ttrpc.WithOnClose(onClose)), nil
}

// socketPath is the file behind a unix:// address ("" for others).
func socketPath(addr string) string {
	for _, p := range []string{"unix://", "ttrpc+unix://"} {
		if s, ok := strings.CutPrefix(addr, p); ok {
			return s
		}
	}
	return ""
}

// isNotFound reports the shim's "no such task or process".
func isNotFound(err error) bool {
	return status.Code(err) == codes.NotFound
}

// isGone reports a connection to a shim that is no longer there.
func isGone(err error) bool {
	return errors.Is(err, ttrpc.ErrClosed) || errors.Is(err, net.ErrClosed) ||
		status.Code(err) == codes.Unavailable
}

// rpcErr wraps a shim error with what was asked, mapping NotFound to
// runtime.ErrNotExist.
func rpcErr(err error, what, id string) error {
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return fmt.Errorf("shim %s %s: %w: %w", what, id, runtime.ErrNotExist, err)
	}
	return fmt.Errorf("shim %s %s: %w", what, id, err)
}

type v2Task struct {
	c  taskv2.TTRPCTaskService
	ns string
}

func (t v2Task) Create(ctx context.Context, r createReq) (uint32, error) {
	resp, err := t.c.Create(withNamespace(ctx, t.ns), &taskv2.CreateTaskRequest{ID: r.ID, Bundle: r.Bundle,
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal, Options: r.Options})
	return resp.GetPid(), err
}

func (t v2Task) Start(ctx context.Context, id, execID string) (uint32, error) {
	resp, err := t.c.Start(withNamespace(ctx, t.ns), &taskv2.StartRequest{ID: id, ExecID: execID})
	return resp.GetPid(), err
}

func (t v2Task) State(ctx context.Context, id, execID string) (taskState, error) {
	r, err := t.c.State(withNamespace(ctx, t.ns), &taskv2.StateRequest{ID: id, ExecID: execID})
	if err != nil {
		return taskState{}, err
	}
	return taskState{Status: r.Status, Pid: r.Pid, Exit: exitFrom(r.Pid, r.ExitStatus, r.ExitedAt),
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}, nil
}

func (t v2Task) Kill(ctx context.Context, id, execID string, sig uint32, all bool) error {
	_, err := t.c.Kill(withNamespace(ctx, t.ns), &taskv2.KillRequest{ID: id, ExecID: execID, Signal: sig, All: all})
	return err
}

func (t v2Task) Delete(ctx context.Context, id, execID string) (exitStatus, error) {
	r, err := t.c.Delete(withNamespace(ctx, t.ns), &taskv2.DeleteRequest{ID: id, ExecID: execID})
	if err != nil {
		return exitStatus{}, err
	}
	return exitFrom(r.Pid, r.ExitStatus, r.ExitedAt), nil
}

func (t v2Task) Exec(ctx context.Context, r execReq) error {
	_, err := t.c.Exec(withNamespace(ctx, t.ns), &taskv2.ExecProcessRequest{ID: r.ID, ExecID: r.ExecID,
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal, Spec: r.Spec})
	return err
}

func (t v2Task) ResizePty(ctx context.Context, id, execID string, width, height uint32) error {
	_, err := t.c.ResizePty(withNamespace(ctx, t.ns), &taskv2.ResizePtyRequest{ID: id, ExecID: execID, Width: width, Height: height})
	return err
}

func (t v2Task) CloseIO(ctx context.Context, id, execID string) error {
	_, err := t.c.CloseIO(withNamespace(ctx, t.ns), &taskv2.CloseIORequest{ID: id, ExecID: execID, Stdin: true})
	return err
}

func (t v2Task) Update(ctx context.Context, id string, res *anypb.Any) error {
	_, err := t.c.Update(withNamespace(ctx, t.ns), &taskv2.UpdateTaskRequest{ID: id, Resources: res})
	return err
}

func (t v2Task) Wait(ctx context.Context, id, execID string) (exitStatus, error) {
	r, err := t.c.Wait(withNamespace(ctx, t.ns), &taskv2.WaitRequest{ID: id, ExecID: execID})
	if err != nil {
		return exitStatus{}, err
	}
	return exitFrom(0, r.ExitStatus, r.ExitedAt), nil
}

func (t v2Task) Connect(ctx context.Context, id string) (uint32, uint32, error) {
	r, err := t.c.Connect(withNamespace(ctx, t.ns), &taskv2.ConnectRequest{ID: id})
	return r.GetShimPid(), r.GetTaskPid(), err
}

func (t v2Task) Shutdown(ctx context.Context, id string) error {
	_, err := t.c.Shutdown(withNamespace(ctx, t.ns), &taskv2.ShutdownRequest{ID: id})
	return err
}

type v3Task struct {
	c  taskv3.TTRPCTaskService
	ns string
}

func (t v3Task) Create(ctx context.Context, r createReq) (uint32, error) {
	resp, err := t.c.Create(withNamespace(ctx, t.ns), &taskv3.CreateTaskRequest{ID: r.ID, Bundle: r.Bundle,
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal, Options: r.Options})
	return resp.GetPid(), err
}

func (t v3Task) Start(ctx context.Context, id, execID string) (uint32, error) {
	resp, err := t.c.Start(withNamespace(ctx, t.ns), &taskv3.StartRequest{ID: id, ExecID: execID})
	return resp.GetPid(), err
}

func (t v3Task) State(ctx context.Context, id, execID string) (taskState, error) {
	r, err := t.c.State(withNamespace(ctx, t.ns), &taskv3.StateRequest{ID: id, ExecID: execID})
	if err != nil {
		return taskState{}, err
	}
	return taskState{Status: r.Status, Pid: r.Pid, Exit: exitFrom(r.Pid, r.ExitStatus, r.ExitedAt),
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}, nil
}

func (t v3Task) Kill(ctx context.Context, id, execID string, sig uint32, all bool) error {
	_, err := t.c.Kill(withNamespace(ctx, t.ns), &taskv3.KillRequest{ID: id, ExecID: execID, Signal: sig, All: all})
	return err
}

func (t v3Task) Delete(ctx context.Context, id, execID string) (exitStatus, error) {
	r, err := t.c.Delete(withNamespace(ctx, t.ns), &taskv3.DeleteRequest{ID: id, ExecID: execID})
	if err != nil {
		return exitStatus{}, err
	}
	return exitFrom(r.Pid, r.ExitStatus, r.ExitedAt), nil
}

func (t v3Task) Exec(ctx context.Context, r execReq) error {
	_, err := t.c.Exec(withNamespace(ctx, t.ns), &taskv3.ExecProcessRequest{ID: r.ID, ExecID: r.ExecID,
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal, Spec: r.Spec})
	return err
}

func (t v3Task) ResizePty(ctx context.Context, id, execID string, width, height uint32) error {
	_, err := t.c.ResizePty(withNamespace(ctx, t.ns), &taskv3.ResizePtyRequest{ID: id, ExecID: execID, Width: width, Height: height})
	return err
}

func (t v3Task) CloseIO(ctx context.Context, id, execID string) error {
	_, err := t.c.CloseIO(withNamespace(ctx, t.ns), &taskv3.CloseIORequest{ID: id, ExecID: execID, Stdin: true})
	return err
}

func (t v3Task) Update(ctx context.Context, id string, res *anypb.Any) error {
	_, err := t.c.Update(withNamespace(ctx, t.ns), &taskv3.UpdateTaskRequest{ID: id, Resources: res})
	return err
}

func (t v3Task) Wait(ctx context.Context, id, execID string) (exitStatus, error) {
	r, err := t.c.Wait(withNamespace(ctx, t.ns), &taskv3.WaitRequest{ID: id, ExecID: execID})
	if err != nil {
		return exitStatus{}, err
	}
	return exitFrom(0, r.ExitStatus, r.ExitedAt), nil
}

func (t v3Task) Connect(ctx context.Context, id string) (uint32, uint32, error) {
	r, err := t.c.Connect(withNamespace(ctx, t.ns), &taskv3.ConnectRequest{ID: id})
	return r.GetShimPid(), r.GetTaskPid(), err
}

func (t v3Task) Shutdown(ctx context.Context, id string) error {
	_, err := t.c.Shutdown(withNamespace(ctx, t.ns), &taskv3.ShutdownRequest{ID: id})
	return err
}
