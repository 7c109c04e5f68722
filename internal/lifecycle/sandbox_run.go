package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cradle-runtime/cradle/internal/failpoint"
	"github.com/cradle-runtime/cradle/internal/observe"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/nri"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runResult is what one RunPodSandbox under a name gives every caller
// that waited for it: the pod and the config it was made with.
type runResult struct {
	id  string
	cfg *runtimeapi.PodSandboxConfig
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RunPodSandbox pins the pod's namespaces, networks them, and only then
// creates the sandbox in the runtime, recording each step before the next.
func (m *Manager) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	if err := crierr.Checked(validate.PodSandbox(cfg)); err != nil {
		return "", err
	}
	handler, err := m.newPodHandler(handler)
	if err != nil {
		return "", err
	}
	sysctls := cfg.GetLinux().GetSysctls()
	if err := netns.ValidateSysctls(sysctls, sandbox.HostNetwork(cfg), sandbox.HostIPC(cfg)); err != nil {
		return "", crierr.Invalid("config.linux.sysctls", "%v", err)
	}
	if _, _, err := podIDMaps(cfg); err != nil {
		return "", err
	}
	if !sandbox.HostNetwork(cfg) {
		if err := m.net.Ready(); err != nil {
			return "", status.Errorf(codes.FailedPrecondition, "pod network is not ready (config.linux.security_context.namespace_options.network is POD): %v", err)
		}
	}

	name := sandbox.Name(cfg.GetMetadata())
	// A kubelet retry waits for, and shares, the first attempt, whose work
	// goes on even if its client gives up.
	if id, ok := m.sbNames.Lookup(name); ok {
		if sb, err := m.sandboxes.Get(id); err == nil && sb.Get().State == sandbox.Creating {
			slog.Debug("RunPodSandbox retry waits for the first attempt", "pod", name, "sandbox", id)
		}
	}
	ch := m.inflight.DoChan(name, func() (any, error) {
		if id, ok := m.sbNames.Lookup(name); ok {
			// A retry after the first call finished but the client gave up.
			res := runResult{id: id, cfg: cfg}
			if sb, err := m.sandboxes.Get(id); err == nil {
				res.cfg = sb.Get().Config
			}
			return res, nil
		}
		id, err := m.runSandbox(context.WithoutCancel(ctx), cfg, handler, name)
		return runResult{id: id, cfg: cfg}, err
	})
	var res runResult
	select {
	case r := <-ch:
		res, _ = r.Val.(runResult)
		if err := sameConfig(name, res.cfg, cfg); err != nil {
			return "", err
		}
		if r.Err != nil {
			return "", r.Err
		}
	case <-ctx.Done():
		return "", crierr.ToStatus(ctx.Err(), "waiting for the first RunPodSandbox of %s", name)
	}
	return res.id, nil
}

// sameConfig tells a retry (the same config, which gets the same pod) from
// a second pod under the first one's metadata.
func sameConfig(name string, have, want *runtimeapi.PodSandboxConfig) error {
	if proto.Equal(have, want) {
		return nil
	}
	return status.Errorf(codes.AlreadyExists, "config.metadata: pod sandbox %q already exists with a different config", name)
}

func (m *Manager) runSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler, name string) (id string, retErr error) {
	id = newID()
	if _, ok := m.sbNames.Reserve(name, id); !ok {
		return "", status.Errorf(codes.AlreadyExists, "config.metadata: pod sandbox name %q is reserved", name)
	}
	label, err := ocispec.PodSELinuxLabel(cfg.GetLinux().GetSecurityContext().GetSelinuxOptions())
	if err != nil {
		m.sbNames.Release(name, id)
		return "", status.Errorf(codes.InvalidArgument, "config.linux.security_context.selinux_options: %v", err)
	}
	sb := sandbox.New(sandbox.Record{
		ID: id, Name: name, Config: cfg, Handler: handler, State: sandbox.Creating,
		CreatedAt: time.Now().UnixNano(), Dir: filepath.Join(m.config().RunRoot, "pods", id),
		SELinuxLabel: label,
	})
	if err := m.putSandbox(sb.Get()); err != nil {
		m.sbNames.Release(name, id)
		ocispec.ReleaseSELinuxLabel(label)
		return "", crierr.ToStatus(err, "persist sandbox")
	}
	m.sandboxes.Add(id, sb)
	slog.Debug("sandbox record created", "sandbox", id, "name", name)
	sb.Op.Lock()
	defer sb.Op.Unlock()
	defer func() {
		if retErr == nil {
			return
		}
		// Roll back with a context of its own: the request's may be done.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := m.removeSandbox(rctx, sb); err != nil {
			slog.Error("rollback of failed RunPodSandbox left state behind; kept for Stop/Remove", "sandbox", id, "error", err)
			_, _ = sb.Transition(m.putSandbox, sandbox.NotReady, nil)
		}
	}()
	failpoint.Hit("run:after-record")

	// Step timings go into the "ready" log line: where pod start time goes.
	t0 := time.Now()
	_, span := observe.StartSpan(ctx, "pin namespaces")
	err = m.pinNamespaces(sb)
	observe.EndSpan(span, err)
	if err != nil {
		return "", err
	}
	failpoint.Hit("run:after-pin")
	tPin := time.Now()
	files, err := sandbox.WriteFiles(sb.Get().Dir, hostname(cfg), cfg.GetDnsConfig(), sandbox.HostIPC(cfg))
	if err != nil {
		return "", crierr.ToStatus(err, "pod files")
	}
	if err := sb.Update(m.putSandbox, func(r *sandbox.Record) {
		r.HostnameFile, r.HostsFile, r.ResolvFile, r.ShmPath = files.Hostname, files.Hosts, files.Resolv, files.Shm
	}); err != nil {
		return "", crierr.ToStatus(err, "persist sandbox")
	}
	if !sandbox.HostNetwork(cfg) {
		a, err := m.net.Setup(ctx, m.podNetwork(sb.Get()))
		if err != nil {
			return "", crierr.ToStatus(err, "set up pod network")
		}
		if err := sb.Update(m.putSandbox, func(r *sandbox.Record) { r.Network = a }); err != nil {
			// Release it now: without a record, nothing else would.
			_ = m.net.Teardown(ctx, m.podNetwork(sb.Get()), a)
			return "", crierr.ToStatus(err, "persist sandbox")
		}
	}
	failpoint.Hit("run:after-cni")
	tNet := time.Now()
	switch m.infraFor(sb.Get()) {
	case infraPause:
		ictx, span := observe.StartSpan(ctx, "start infra container")
		err := m.startInfra(ictx, sb)
		observe.EndSpan(span, err)
		if err != nil {
			return "", err
		}
	case infraHolder:
		_, span := observe.StartSpan(ctx, "start pid holder")
		err := m.startPIDHolder(sb)
		observe.EndSpan(span, err)
		if err != nil {
			return "", err
		}
	}
	failpoint.Hit("run:after-infra")
	tInfra := time.Now()
	// Plugins see the pod before anyone else can: it is still CREATING, so
	// it is not listed and takes no containers until the hook returns.
	unblock := m.nri.BlockSync()
	defer unblock()
	if err := m.nri.RunPodSandbox(ctx, nri.PodSandbox(sb.Get())); err != nil {
		return "", crierr.ToStatus(err, "run pod sandbox")
	}
	if _, err := sb.Transition(m.putSandbox, sandbox.Ready, nil); err != nil {
		// Plugins saw the pod run: tell them it is gone.
		if nerr := m.nri.RemovePodSandbox(ctx, nri.PodSandbox(sb.Get())); nerr != nil {
			slog.Warn("NRI RemovePodSandbox after failed RunPodSandbox", "sandbox", id, "error", nerr)
		}
		return "", crierr.ToStatus(err, "persist sandbox")
	}
	m.emitSandbox(sb.Get(), runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	slog.Info("pod sandbox ready", "sandbox", id, "pod", cfg.GetMetadata().GetNamespace()+"/"+cfg.GetMetadata().GetName(),
		"pin", tPin.Sub(t0).Round(time.Microsecond), "network", tNet.Sub(tPin).Round(time.Microsecond),
		"infra", tInfra.Sub(tNet).Round(time.Microsecond), "total", time.Since(t0).Round(time.Microsecond))
	m.obs.PodStarted(time.Since(t0))
	return id, nil
}

func (m *Manager) pinNamespaces(sb *sandbox.Sandbox) error {
	r := sb.Get()
	cfg := r.Config
	req := netns.Request{ID: r.ID, Sysctls: m.podSysctls(cfg)}
	if !sandbox.HostNetwork(cfg) {
		req.Kinds = append(req.Kinds, netns.Net, netns.UTS)
		req.Hostname = hostname(cfg)
	}
	if !sandbox.HostIPC(cfg) {
		req.Kinds = append(req.Kinds, netns.IPC)
	}
	req.UIDs, req.GIDs, _ = podIDMaps(cfg)
	if len(req.Kinds) == 0 && len(req.UIDs) == 0 {
		return nil
	}
	// Record where the pins will go first, so a crash mid-pin is swept.
	want := m.pins.Paths(req)
	if err := sb.Update(m.putSandbox, func(r *sandbox.Record) {
		r.NetNS, r.IPCNS, r.UTSNS, r.UserNS = want.Net, want.IPC, want.UTS, want.User
		r.UIDMappings, r.GIDMappings = req.UIDs, req.GIDs
	}); err != nil {
		return crierr.ToStatus(err, "persist sandbox")
	}
	if _, err := m.pins.Pin(req); err != nil {
		return crierr.ToStatus(err, "pin pod namespaces")
	}
	return nil
}

// podSysctls are the sysctls the pod's namespaces get: the applicable
// runtime.default_sysctls, overridden by the pod's own.
func (m *Manager) podSysctls(cfg *runtimeapi.PodSandboxConfig) map[string]string {
	return netns.WithDefaults(m.sysctls, cfg.GetLinux().GetSysctls(), sandbox.HostNetwork(cfg), sandbox.HostIPC(cfg))
}

// forgetSandbox drops a fully released sandbox from memory and disk.
func (m *Manager) forgetSandbox(sb *sandbox.Sandbox) {
	r := sb.Get()
	if err := m.sbRecords.Delete(r.ID); err != nil {
		slog.Warn("delete sandbox record", "sandbox", r.ID, "error", err)
	}
	m.sandboxes.Delete(r.ID)
	m.sbNames.Release(r.Name, r.ID)
	ocispec.ReleaseSELinuxLabel(r.SELinuxLabel)
}
