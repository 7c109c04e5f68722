// Package lifecycle runs pods and containers: it carries out what the CRI
// asks (run, stop and remove a pod; create, start, stop, update and remove
// a container) through the domain packages, keeps their records, relays
// exits, and brings the records up to date after a restart. The server
// translates the CRI into these calls and reads the records back.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cradle-runtime/cradle/internal/cdi"
	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/nri"
	"github.com/cradle-runtime/cradle/internal/observe"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/runtime/conmon"
	"github.com/cradle-runtime/cradle/internal/runtime/shim"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/store"
	"golang.org/x/sync/singleflight"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options are the daemon-wide parts the manager works with.
type Options struct {
	Config *config.Config
	Images *image.Service
	Net    *network.Manager
	// Event is told of every container event, for GetContainerEvents.
	Event func(runtimeapi.ContainerEventType, container.Record)
	// Observer is told of pod and container starts and OOM kills; nil
	// observes nothing.
	Observer observe.Observer
	// SandboxEvent is told of every pod sandbox event (created, started,
	// stopped, deleted), which GetContainerEvents carries as containerd
	// does: with the sandbox's ID as the container's.
	SandboxEvent func(runtimeapi.ContainerEventType, sandbox.Record)
}

// Manager owns the pod and container records and every change to them.
type Manager struct {
	cfg      atomic.Pointer[config.Config] // replaced whole by Reload
	images   *image.Service
	net      *network.Manager
	pins     *netns.Manager
	bundles  runtime.Bundles // one bundle directory per container
	monitor  conmon.Options  // shared by the conmon handlers
	defaults atomic.Pointer[ocispec.Defaults]
	sysctls  map[string]string // runtime.default_sysctls
	event    func(runtimeapi.ContainerEventType, container.Record)
	sbEvent  func(runtimeapi.ContainerEventType, sandbox.Record)
	obs      observe.Observer

	// rtMu guards the handler set, which Reload changes. A removed
	// handler's runtime stays, retired: its pods keep working, new pods
	// are refused.
	rtMu     sync.RWMutex
	runtimes map[string]runtime.Runtime
	retired  map[string]config.Handler

	sandboxes  *store.Index[*sandbox.Sandbox]
	containers *store.Index[*container.Container]
	sbNames    *store.Names
	ctrNames   *store.Names
	sbRecords  *store.Dir
	ctrRecords *store.Dir
	inflight   singleflight.Group // RunPodSandbox by pod name, for kubelet retries
	stopWatch  func()
	nri        *nri.NRI // nil when disabled; its methods accept nil
	cdi        *cdi.Registry
}

// New opens the records, configures the runtime handlers and restores
// state from disk, reconciling it with what happened meanwhile.
func New(o Options) (*Manager, error) {
	cfg := o.Config
	m := &Manager{
		images: o.Images, net: o.Net, event: o.Event, sbEvent: o.SandboxEvent, obs: observe.Or(o.Observer),
		runtimes: map[string]runtime.Runtime{}, retired: map[string]config.Handler{},
		pins: netns.NewManager(netns.DefaultNetDir, filepath.Join(cfg.RunRoot, "ns"),
			filepath.Join(cfg.Root, "netns-owned")),
		bundles:    runtime.Bundles(filepath.Join(cfg.RunRoot, "containers")),
		sandboxes:  store.NewIndex[*sandbox.Sandbox](),
		containers: store.NewIndex[*container.Container](),
		sbNames:    store.NewNames(),
		ctrNames:   store.NewNames(),
		cdi:        cdi.New(cfg.Runtime.CDISpecDirs),
		monitor: conmon.Options{
			Conmon: cfg.Runtime.Conmon, ExitDir: filepath.Join(cfg.RunRoot, "exits"),
			SocketDir:     filepath.Join(cfg.RunRoot, "socks"),
			SystemdCgroup: cfg.Runtime.CgroupDriver == config.CgroupDriverSystemd,
		},
	}
	m.cfg.Store(cfg)
	for _, d := range []string{cfg.Root, cfg.RunRoot, m.monitor.ExitDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	// Pods with user namespaces reach their root filesystems through the
	// runroot: it must be traversable, not listable, by unprivileged IDs.
	if err := os.Chmod(cfg.RunRoot, 0o711); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", cfg.RunRoot, err)
	}
	var err error
	if m.sbRecords, err = store.Open(filepath.Join(cfg.Root, "records", "sandboxes")); err != nil {
		return nil, err
	}
	if m.ctrRecords, err = store.Open(filepath.Join(cfg.Root, "records", "containers")); err != nil {
		return nil, err
	}
	for _, name := range cfg.HandlerNames() {
		m.runtimes[name] = m.newRuntime(cfg, name)
	}
	d, err := defaults(cfg)
	if err != nil {
		return nil, err
	}
	m.defaults.Store(&d)
	if m.sysctls, err = cfg.Runtime.Sysctls(); err != nil {
		return nil, err
	}
	// Built before the exit watcher, which relays exits to it; it serves
	// plugins only from StartNRI, after restore.
	if m.nri, err = nri.New(cfg.NRI, nriRuntime{m}); err != nil {
		return nil, err
	}
	// Watch exits before restoring, so none that happen meanwhile is missed.
	if m.stopWatch, err = conmon.WatchExits(m.monitor, m.bundles, m.onExit); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.restore(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// newRuntime builds the backend of a handler: runc or crun under conmon,
// or a containerd shim v2 (vm) whose tasks the daemon drives itself.
func (m *Manager) newRuntime(cfg *config.Config, name string) runtime.Runtime {
	h, _ := cfg.Handler(name)
	if h.Type == config.HandlerTypeVM {
		o := shim.Options{
			StateDir: filepath.Join(cfg.RunRoot, "shims", name),
			OnExit:   m.onExit,
			Env:      h.MonitorEnv,
			Cgroup:   h.MonitorCgroup,
		}
		if h.RuntimePath != "" {
			o.RuncOptions = &shim.RuncOptions{
				BinaryName: h.RuntimePath, Root: cfg.HandlerRoot(name),
				SystemdCgroup: cfg.Runtime.CgroupDriver == config.CgroupDriverSystemd,
			}
			o.Features = runtime.QueryFeatures(context.Background(), h.RuntimePath)
		}
		return shim.New(context.Background(), name, h.Path, o)
	}
	rt := conmon.New(context.Background(), name, h.Path, cfg.HandlerRoot(name), m.monitor)
	rt.Env, rt.Args, rt.Cgroup = h.MonitorEnv, h.RuntimeArgs, h.MonitorCgroup
	return rt
}

func defaults(cfg *config.Config) (ocispec.Defaults, error) {
	ulimits, err := cfg.Runtime.Ulimits()
	if err != nil {
		return ocispec.Defaults{}, err
	}
	d := ocispec.Defaults{
		CgroupDriver:   cfg.Runtime.CgroupDriver,
		CgroupParent:   cfg.Runtime.CgroupParent,
		Capabilities:   cfg.Runtime.Capabilities(),
		Bounding:       ocispec.BoundingSet(),
		MinOOMScoreAdj: ocispec.OwnOOMScoreAdj(),
		PidsLimit:      cfg.Runtime.PidsLimit,
	}
	d.DeviceOwnershipFromSecurityContext = cfg.Runtime.DeviceOwnershipFromSecurityContext
	for _, u := range ulimits {
		d.Rlimits = append(d.Rlimits, rlimit(u))
	}
	if d.SeccompProfile, err = ocispec.LoadDefaultProfile(cfg.Runtime.SeccompProfile); err != nil {
		return ocispec.Defaults{}, err
	}
	return d, nil
}

// Close stops the exit watcher and the NRI connection. Containers keep
// running: their monitors outlive the daemon.
func (m *Manager) Close() {
	m.nri.Stop()
	if m.stopWatch != nil {
		m.stopWatch()
	}
	m.rtMu.RLock()
	defer m.rtMu.RUnlock()
	for name, rt := range m.runtimes {
		if c, ok := rt.(interface{ Close() error }); ok {
			if err := c.Close(); err != nil {
				slog.Warn("close runtime handler", "handler", name, "error", err)
			}
		}
	}
}

// Sandboxes is the index of pods.
func (m *Manager) Sandboxes() *store.Index[*sandbox.Sandbox] { return m.sandboxes }

// Containers is the index of containers, infra containers included.
func (m *Manager) Containers() *store.Index[*container.Container] { return m.containers }

// Runtime is the runtime of a handler ("" for the default one), with the
// handler's name.
func (m *Manager) Runtime(handler string) (runtime.Runtime, string, error) {
	return m.runtimeFor(handler)
}

// handlerConfig is the configuration of a handler ("" for the default),
// a retired one's included.
func (m *Manager) handlerConfig(handler string) config.Handler {
	if h, ok := m.config().Handler(handler); ok {
		return h
	}
	m.rtMu.RLock()
	defer m.rtMu.RUnlock()
	return m.retired[handler]
}

// config is the configuration in force.
func (m *Manager) config() *config.Config { return m.cfg.Load() }

// runtimeFor is a handler's runtime, a retired one's included: what the
// pods it runs need.
func (m *Manager) runtimeFor(handler string) (runtime.Runtime, string, error) {
	if handler == "" {
		handler = m.config().Runtime.DefaultHandler
	}
	m.rtMu.RLock()
	defer m.rtMu.RUnlock()
	rt, ok := m.runtimes[handler]
	if !ok {
		return nil, handler, fmt.Errorf("runtime_handler %q is not configured", handler)
	}
	return rt, handler, nil
}

// ContainersOf lists a pod's containers, its infra container if asked.
func (m *Manager) ContainersOf(sandboxID string, withInfra bool) []*container.Container {
	return m.containersOf(sandboxID, withInfra)
}

// StateCounts counts pods and containers by state, for the metrics.
func (m *Manager) StateCounts() (sandboxes, containers map[string]int) {
	sandboxes, containers = map[string]int{}, map[string]int{}
	for _, sb := range m.sandboxes.List() {
		sandboxes[string(sb.Get().State)]++
	}
	for _, c := range m.containers.List() {
		if r := c.Get(); !r.Infra {
			containers[r.State.String()]++
		}
	}
	return sandboxes, containers
}

func (m *Manager) emit(typ runtimeapi.ContainerEventType, r container.Record) {
	if m.event != nil && !r.Infra {
		m.event(typ, r)
	}
}

// emitSandbox tells of a sandbox event; r is the record as of the event,
// which for a deleted sandbox is the last one there was.
func (m *Manager) emitSandbox(r sandbox.Record, types ...runtimeapi.ContainerEventType) {
	if m.sbEvent == nil {
		return
	}
	for _, typ := range types {
		m.sbEvent(typ, r)
	}
}

func (m *Manager) putSandbox(r sandbox.Record) error     { return m.sbRecords.Put(r.ID, r) }
func (m *Manager) putContainer(r container.Record) error { return m.ctrRecords.Put(r.ID, r) }

func rlimit(u config.Ulimit) specs.POSIXRlimit {
	return specs.POSIXRlimit{Type: u.Type(), Soft: u.Soft, Hard: u.Hard}
}
