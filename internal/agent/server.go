package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/cradle-runtime/cradle/internal/agent/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Agent serves the agent API.
type Agent struct {
	started time.Duration // guest uptime at init
	runc    string

	mu    sync.Mutex
	procs map[api.ProcessRef]*proc
	ctrs  map[string]bool
}

// New returns the agent; runc is the guest's runc binary.
func New(runc string) *Agent {
	return &Agent{started: uptime(), runc: runc, procs: map[api.ProcessRef]*proc{}, ctrs: map[string]bool{}}
}

func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Register adds the agent's methods to srv.
func (a *Agent) Register(srv *ttrpc.Server) {
	api.Register(srv, map[string]api.Handler{
		api.MPing:            a.ping,
		api.MSetupNetwork:    a.setupNetwork,
		api.MCreateContainer: a.createContainer,
		api.MStart:           a.start,
		api.MSignal:          a.signal,
		api.MWait:            a.wait,
		api.MReadOutput:      a.readOutput,
		api.MWriteStdin:      a.writeStdin,
		api.MCloseStdin:      a.closeStdin,
		api.MDelete:          a.delete,
		api.MShutdown:        a.shutdown,
	})
}

func (a *Agent) ping(context.Context, func(any) error) (any, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, err
	}
	return api.PingReply{KernelRelease: unix.ByteSliceToString(u.Release[:]),
		UptimeSeconds: uptime().Seconds(), AgentSeconds: a.started.Seconds()}, nil
}

func (a *Agent) setupNetwork(_ context.Context, decode func(any) error) (any, error) {
	var n api.Network
	if err := decode(&n); err != nil {
		return nil, err
	}
	if err := setupNetwork(n); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return api.Empty{}, nil
}

// validID keeps IDs usable as one path element and a runc ID.
func validID(field, id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") || len(id) > 256 {
		return status.Errorf(codes.InvalidArgument, "%s %q is not a valid ID", field, id)
	}
	return nil
}

// createContainer writes the guest's runc bundle: the host's spec with
// its root in the share and what only the host has taken out.
func (a *Agent) createContainer(_ context.Context, decode func(any) error) (any, error) {
	var req api.CreateContainerRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	if err := validID("id", req.ID); err != nil {
		return nil, err
	}
	root := filepath.Join(ShareDir, filepath.Clean("/"+req.Rootfs))
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, status.Errorf(codes.InvalidArgument, "rootfs %q is not a directory of the share", req.Rootfs)
	}
	var s specs.Spec
	if err := json.Unmarshal(req.Spec, &s); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "spec: %v", err)
	}
	guestSpec(&s, req.ID, root)
	data, err := json.Marshal(&s)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(BundleDir, req.ID)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctrs[req.ID] {
		return nil, status.Errorf(codes.AlreadyExists, "container %s exists", req.ID)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return nil, err
	}
	a.ctrs[req.ID] = true
	return api.Empty{}, nil
}

// guestSpec adapts a host spec to the guest: the root in the share, the
// guest's own network (the VM is the pod's network namespace), no
// namespace paths of the host, and a cgroup under the guest's root.
func guestSpec(s *specs.Spec, id, root string) {
	if s.Root == nil {
		s.Root = &specs.Root{}
	}
	s.Root.Path = root
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		switch {
		case n.Type == specs.NetworkNamespace, n.Type == specs.UserNamespace:
			// The guest's network is the pod's; user namespaces need host ID maps.
		case n.Path != "":
			ns = append(ns, specs.LinuxNamespace{Type: n.Type})
		default:
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
	s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
	s.Linux.CgroupsPath = "/cradle/" + id
	s.Hooks = nil
	if s.Process != nil {
		s.Process.ApparmorProfile, s.Process.SelinuxLabel = "", ""
	}
	s.Linux.MountLabel = ""
	// The container shares the guest's network namespace, where runc
	// refuses net.* sysctls: they are the guest's to set.
	for k, v := range s.Linux.Sysctl {
		if strings.HasPrefix(k, "net.") && !strings.Contains(k, "/") {
			p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				slog.Warn("sysctl", "key", k, "error", err)
			}
			delete(s.Linux.Sysctl, k)
		}
	}
}

func (a *Agent) start(_ context.Context, decode func(any) error) (any, error) {
	var req api.StartRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	ref := api.ProcessRef{ID: req.ID, ExecID: req.ExecID}
	var cmd *exec.Cmd
	switch {
	case req.ID == "" && len(req.Args) > 0:
		ref.ExecID = "guest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if req.ExecID != "" {
			ref.ExecID = req.ExecID
		}
		cmd = exec.Command(req.Args[0], req.Args[1:]...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	case req.ExecID == "":
		if err := validID("id", req.ID); err != nil {
			return nil, err
		}
		// --no-pivot: the guest's root is the initramfs, where pivot_root
		// fails; the VM, not the mount namespace, is the pod's boundary.
		cmd = exec.Command(a.runc, "--root", RuncRoot, "run", "--no-pivot", "--bundle", filepath.Join(BundleDir, req.ID), req.ID)
	default:
		if err := validID("execId", req.ExecID); err != nil {
			return nil, err
		}
		pf := filepath.Join(BundleDir, req.ID, "exec-"+req.ExecID+".json")
		if err := os.WriteFile(pf, req.Process, 0o600); err != nil {
			return nil, status.Errorf(codes.NotFound, "container %s: %v", req.ID, err)
		}
		cmd = exec.Command(a.runc, "--root", RuncRoot, "exec", "--process", pf, req.ID)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ref.ID != "" && !a.ctrs[ref.ID] {
		return nil, status.Errorf(codes.NotFound, "container %s not found", ref.ID)
	}
	if a.procs[ref] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "process %s/%s exists", ref.ID, ref.ExecID)
	}
	p, err := startProc(cmd, req.Stdin)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	a.procs[ref] = p
	// runc's PID: waiting for the container's own (runc state) would
	// cost seconds of Go start-ups under TCG, and the host has no use for it.
	pid := p.cmd.Process.Pid
	slog.Info("started", "id", ref.ID, "exec", ref.ExecID, "pid", pid)
	return api.StartReply{Pid: pid}, nil
}

func (a *Agent) lookup(ref api.ProcessRef) (*proc, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.procs[ref]
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "process %s/%s not found", ref.ID, ref.ExecID)
	}
	return p, nil
}

func (a *Agent) signal(_ context.Context, decode func(any) error) (any, error) {
	var req api.SignalRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	p, err := a.lookup(req.ProcessRef)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
		return nil, status.Errorf(codes.NotFound, "process %s/%s has exited", req.ID, req.ExecID)
	default:
	}
	if req.ID != "" && req.ExecID == "" {
		args := []string{"--root", RuncRoot, "kill"}
		if req.All {
			args = append(args, "--all")
		}
		args = append(args, req.ID, strconv.Itoa(req.Signal))
		if out, err := exec.Command(a.runc, args...).CombinedOutput(); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "runc kill %s: %v: %s", req.ID, err, out)
		}
		return api.Empty{}, nil
	}
	if err := p.cmd.Process.Signal(syscall.Signal(req.Signal)); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "signal: %v", err)
	}
	return api.Empty{}, nil
}

func (a *Agent) wait(ctx context.Context, decode func(any) error) (any, error) {
	var ref api.ProcessRef
	if err := decode(&ref); err != nil {
		return nil, err
	}
	p, err := a.lookup(ref)
	if err != nil {
		return nil, err
	}
	code, at, err := p.wait(ctx)
	if err != nil {
		return nil, err
	}
	return api.WaitReply{ExitStatus: code, ExitedAtNs: at.UnixNano()}, nil
}

func (a *Agent) readOutput(ctx context.Context, decode func(any) error) (any, error) {
	var req api.ReadOutputRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	p, err := a.lookup(req.ProcessRef)
	if err != nil {
		return nil, err
	}
	s := p.stdout
	switch req.Stream {
	case "stdout":
	case "stderr":
		s = p.stderr
	default:
		return nil, status.Errorf(codes.InvalidArgument, "stream %q: want stdout or stderr", req.Stream)
	}
	data, eof, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	return api.ReadOutputReply{Data: data, EOF: eof}, nil
}

func (a *Agent) writeStdin(_ context.Context, decode func(any) error) (any, error) {
	var req api.WriteStdinRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	p, err := a.lookup(req.ProcessRef)
	if err != nil {
		return nil, err
	}
	if p.stdin == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "process %s/%s has no stdin", req.ID, req.ExecID)
	}
	if _, err := p.stdin.Write(req.Data); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "write stdin: %v", err)
	}
	return api.Empty{}, nil
}

func (a *Agent) closeStdin(_ context.Context, decode func(any) error) (any, error) {
	var ref api.ProcessRef
	if err := decode(&ref); err != nil {
		return nil, err
	}
	p, err := a.lookup(ref)
	if err != nil {
		return nil, err
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	return api.Empty{}, nil
}

// delete forgets an exited process; for a container's init it also
// removes runc's state and the bundle.
func (a *Agent) delete(_ context.Context, decode func(any) error) (any, error) {
	var ref api.ProcessRef
	if err := decode(&ref); err != nil {
		return nil, err
	}
	a.mu.Lock()
	p := a.procs[ref]
	a.mu.Unlock()
	if p != nil {
		select {
		case <-p.done:
		default:
			return nil, status.Errorf(codes.FailedPrecondition, "process %s/%s is still running", ref.ID, ref.ExecID)
		}
	}
	a.mu.Lock()
	delete(a.procs, ref)
	isCtr := ref.ID != "" && ref.ExecID == "" && a.ctrs[ref.ID]
	if isCtr {
		delete(a.ctrs, ref.ID)
	}
	a.mu.Unlock()
	if isCtr {
		if out, err := exec.Command(a.runc, "--root", RuncRoot, "delete", "--force", ref.ID).CombinedOutput(); err != nil {
			slog.Warn("runc delete", "id", ref.ID, "error", err, "output", string(out))
		}
		if err := os.RemoveAll(filepath.Join(BundleDir, ref.ID)); err != nil {
			return nil, fmt.Errorf("remove bundle: %w", err)
		}
	}
	return api.Empty{}, nil
}

// shutdown syncs and powers the VM off (qemu exits). The reply may be
// lost with the VM: the host takes a closed connection as success.
func (a *Agent) shutdown(context.Context, func(any) error) (any, error) {
	go func() {
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}()
	return api.Empty{}, nil
}

func newServer() (*ttrpc.Server, error) {
	srv, err := ttrpc.NewServer()
	if err != nil {
		return nil, fmt.Errorf("ttrpc server: %w", err)
	}
	return srv, nil
}
