package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/streaming"
	"github.com/cradle-runtime/cradle/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxExecOutput caps each of ExecSync's stdout and stderr, as CRI-O does.
const maxExecOutput = 16 << 20

// streamState holds the CRI streaming server (exec, attach, port-forward).
type streamState struct{ srv *streaming.Server }

// startStreaming starts the streaming server on the configured address.
func (s *Server) startStreaming() error {
	sc := s.cfg.Streaming
	srv, err := streaming.Start(streaming.Options{
		Addr: sc.Address, TLSCertFile: sc.TLSCertFile, TLSKeyFile: sc.TLSKeyFile, IdleTimeout: sc.IdleTimeout.Std(),
	}, streamBackend{s})
	if err != nil {
		return fmt.Errorf("streaming server: %w", err)
	}
	s.stream.srv = srv
	slog.Info("streaming server listening", "url", srv.URL())
	return nil
}

// stopStreaming stops it.
func (s *Server) stopStreaming() {
	if s.stream.srv != nil {
		s.stream.srv.Close()
	}
}

// ExecSync runs a command in a container and returns its exit code and
// output. At the timeout the command and all it started are killed.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if err := crierr.Checked(validate.Exec("cmd", req.GetCmd())); err != nil {
		return nil, err
	}
	if req.GetTimeout() < 0 {
		return nil, crierr.Invalid("timeout", "%d is negative", req.GetTimeout())
	}
	r, rt, err := s.execTarget(req.GetContainerId(), "exec in")
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(req.GetTimeout()) * time.Second
	stdout, stderr := &cappedBuffer{max: maxExecOutput}, &cappedBuffer{max: maxExecOutput}
	start := time.Now()
	code, err := rt.Exec(ctx, runtime.ExecOpts{
		ID: r.ID, Bundle: runtime.Bundle(r.Bundle), Args: req.GetCmd(), Stdout: stdout, Stderr: stderr, Timeout: timeout,
	})
	if errors.Is(err, runtime.ErrExecTimeout) {
		s.metrics.ExecSyncTimedOut()
		slog.Info("exec timed out; killed", "container", r.ID, "cmd", req.GetCmd(), "timeout", timeout)
		// The kubelet reads DeadlineExceeded as a probe timeout.
		return nil, status.Errorf(codes.DeadlineExceeded, "command %q timed out after %s", strings.Join(req.GetCmd(), " "), timeout)
	}
	if err != nil {
		return nil, s.execError(r.ID, err)
	}
	slog.Debug("exec finished", "container", r.ID, "cmd", req.GetCmd(), "exitCode", code, "duration", time.Since(start).Round(time.Millisecond))
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes(), ExitCode: int32(code)}, nil
}

// Exec prepares a streaming exec and returns its URL.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := crierr.Checked(validate.Exec("cmd", req.GetCmd())); err != nil {
		return nil, err
	}
	r, _, err := s.execTarget(req.GetContainerId(), "exec in")
	if err != nil {
		return nil, err
	}
	return s.stream.srv.GetExec(&runtimeapi.ExecRequest{
		ContainerId: r.ID, Cmd: req.GetCmd(), Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	})
}

// Attach prepares a streaming attach and returns its URL.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	r, _, err := s.execTarget(req.GetContainerId(), "attach to")
	if err != nil {
		return nil, err
	}
	return s.stream.srv.GetAttach(&runtimeapi.AttachRequest{
		ContainerId: r.ID, Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	})
}

// PortForward prepares a port-forward into a pod and returns its URL.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, crierr.Invalid("port", "%d is not a TCP port", p)
		}
	}
	sr, err := s.readySandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return s.stream.srv.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: sr.ID, Port: req.GetPort()})
}

// execTarget finds a running container: NotFound for an unknown one,
// FailedPrecondition naming the state for one that doesn't run.
func (s *Server) execTarget(id, verb string) (container.Record, runtime.Runtime, error) {
	c, err := s.lc.Container(id)
	if err != nil {
		return container.Record{}, nil, err
	}
	r := c.Get()
	if r.Infra {
		return container.Record{}, nil, status.Errorf(codes.NotFound, "container_id: container %q not found", id)
	}
	if r.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return container.Record{}, nil, status.Errorf(codes.FailedPrecondition,
			"container_id: cannot %s container %s: it is %s, not running", verb, r.ID, r.State)
	}
	rt, _, err := s.lc.Runtime(r.Handler)
	if err != nil {
		return container.Record{}, nil, crierr.ToStatus(err, "runtime")
	}
	return r, rt, nil
}

// execError maps a failed exec: a container that stopped meanwhile is a
// FailedPrecondition, like one found stopped.
func (s *Server) execError(id string, err error) error {
	if c, gerr := s.lc.Containers().Get(id); gerr == nil {
		if st := c.Get().State; st != runtimeapi.ContainerState_CONTAINER_RUNNING {
			return status.Errorf(codes.FailedPrecondition, "container_id: container %s is %s, not running: %v", id, st, err)
		}
	}
	return crierr.ToStatus(err, "exec in container %s", id)
}

func (s *Server) readySandbox(id string) (sandbox.Record, error) {
	if id == "" {
		return sandbox.Record{}, crierr.Invalid("pod_sandbox_id", "is empty")
	}
	sb, err := s.lc.Sandboxes().Get(id)
	if err != nil {
		return sandbox.Record{}, crierr.ToStatus(err, "pod_sandbox_id")
	}
	sr := sb.Get()
	if sr.State != sandbox.Ready {
		return sandbox.Record{}, status.Errorf(codes.FailedPrecondition, "pod_sandbox_id: sandbox %s is %s, not ready", sr.ID, sr.State)
	}
	return sr, nil
}

// streamBackend runs the streaming server's sessions. The container or
// pod is looked up again: it may have stopped since the URL was handed out.
type streamBackend struct{ s *Server }

func (b streamBackend) Exec(ctx context.Context, id string, cmd []string, st streaming.Streams) (int, error) {
	r, rt, err := b.s.execTarget(id, "exec in")
	if err != nil {
		return -1, err
	}
	slog.Debug("streaming exec", "container", r.ID, "cmd", cmd, "tty", st.Tty)
	return rt.Exec(ctx, runtime.ExecOpts{
		ID: r.ID, Bundle: runtime.Bundle(r.Bundle), Args: cmd, Tty: st.Tty,
		Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr, Resize: st.Resize,
	})
}

func (b streamBackend) Attach(ctx context.Context, id string, st streaming.Streams) error {
	r, rt, err := b.s.execTarget(id, "attach to")
	if err != nil {
		return err
	}
	slog.Debug("attach", "container", r.ID, "tty", st.Tty, "stdin", st.Stdin != nil)
	return rt.Attach(ctx, runtime.AttachOpts{
		ID: r.ID, Bundle: runtime.Bundle(r.Bundle), Tty: r.Config.GetTty(), StdinOnce: r.Config.GetStdinOnce(),
		Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr, Resize: st.Resize,
	})
}

func (b streamBackend) NetNS(sandboxID string) (string, error) {
	sr, err := b.s.readySandbox(sandboxID)
	if err != nil {
		return "", err
	}
	if sandbox.HostNetwork(sr.Config) {
		return "", nil
	}
	if sr.NetNS == "" {
		return "", fmt.Errorf("sandbox %s has no network namespace", sr.ID)
	}
	return sr.NetNS, nil
}

// cappedBuffer keeps the first max bytes written and drops the rest, so a
// chatty command can't make the daemon hold unbounded output.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
