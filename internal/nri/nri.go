// Package nri connects cradle to NRI (Node Resource Interface) plugins: it
// relays pod and container lifecycle events to them and hands back their
// adjustments. It is a thin layer over the containerd/nri adaptation.
package nri

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is what plugins may ask of the daemon.
type Runtime interface {
	// State lists the pods and containers a connecting plugin starts from.
	State() ([]*api.PodSandbox, []*api.Container)
	// Update applies resource updates; it returns the ones that failed.
	Update(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error)
	// Evict stops a container on a plugin's request.
	Evict(ctx context.Context, id, reason string) error
}

// NRI relays events to plugins. A nil *NRI, or one whose config disables
// it, does nothing: the daemon calls it unconditionally. Reconfigure may
// replace the adaptation behind it at any time; each call uses one.
type NRI struct {
	rt   Runtime
	swap swapLock
	// cur is the instance in force, nil when disabled. It changes only
	// under swap's write lock, so a holder of the read lock sees it fixed.
	cur atomic.Pointer[instance]
}

// New builds the adaptation if cfg enables it; Start makes it serve.
func New(cfg config.NRIConfig, rt Runtime) (*NRI, error) {
	n := &NRI{rt: rt}
	n.swap.init()
	SetTimeouts(cfg)
	if !cfg.Enable {
		return n, nil
	}
	in, err := n.newInstance(cfg)
	if err != nil {
		return nil, err
	}
	n.cur.Store(in)
	return n, nil
}

// use returns the adaptation in force (nil when disabled) and the func
// that ends the use; a reload does not stop it before.
func (n *NRI) use() (*adaptation.Adaptation, func()) {
	if n == nil {
		return nil, func() {}
	}
	n.swap.rlock()
	if in := n.cur.Load(); in != nil {
		return in.a, n.swap.runlock
	}
	return nil, n.swap.runlock
}

// SetTimeouts applies the plugin timeouts. They are process-wide in the NRI
// library and read at each use, so a reload may change them.
func SetTimeouts(cfg config.NRIConfig) {
	if cfg.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(cfg.RequestTimeout.Std())
	}
	if cfg.RegistrationTimeout > 0 {
		adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout.Std())
	}
}

// Start launches the configured plugins and listens for external ones.
func (n *NRI) Start() error {
	a, done := n.use()
	defer done()
	if a == nil {
		return nil
	}
	return n.cur.Load().start()
}

// Stop disconnects every plugin and removes the socket.
func (n *NRI) Stop() {
	if n == nil {
		return
	}
	n.swap.lock()
	defer n.swap.unlock()
	if in := n.cur.Swap(nil); in != nil {
		in.stop()
	}
}

// Enabled reports whether events go anywhere. A hook checks again.
func (n *NRI) Enabled() bool { return n != nil && n.cur.Load() != nil }

// BlockSync holds off plugin synchronization until the returned func is
// called. A lifecycle step holds it from its hook until the pod or container
// is listed, so that a plugin connecting meanwhile sees it in Synchronize or
// gets the hook, never neither. It holds off a reload too, even while NRI
// is off: plugins a reload starts synchronize after the step.
func (n *NRI) BlockSync() func() {
	a, done := n.use()
	if a == nil {
		return sync.OnceFunc(done)
	}
	b := a.BlockPluginSync()
	return sync.OnceFunc(func() {
		b.Unblock()
		done()
	})
}

func (n *NRI) sync(ctx context.Context, in *instance, cb adaptation.SyncCB) error {
	pods, ctrs := n.rt.State()
	updates, err := cb(ctx, pods, ctrs)
	if err != nil {
		return fmt.Errorf("synchronize plugin: %w", err)
	}
	in.mu.Lock()
	if in.deferring {
		in.deferred = append(in.deferred, updates...)
		in.mu.Unlock()
		return nil
	}
	in.mu.Unlock()
	if failed, err := n.rt.Update(ctx, updates); err != nil || len(failed) > 0 {
		return fmt.Errorf("apply %d synchronization update(s): %w", len(failed), err)
	}
	return nil
}

func (n *NRI) update(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	return n.rt.Update(ctx, updates)
}

// apply carries out the updates and evictions a hook's plugins asked for.
func (n *NRI) apply(ctx context.Context, updates []*api.ContainerUpdate, evict []*api.ContainerEviction) error {
	if failed, err := n.rt.Update(ctx, updates); err != nil {
		return err
	} else if len(failed) > 0 {
		return fmt.Errorf("%d container update(s) failed", len(failed))
	}
	for _, e := range evict {
		if err := n.rt.Evict(ctx, e.GetContainerId(), e.GetReason()); err != nil {
			return fmt.Errorf("evict container %s: %w", e.GetContainerId(), err)
		}
	}
	return nil
}

// begin starts one hook: the adaptation in force (nil when NRI is off)
// and the hook's context, which outlives the caller's cancellation but is
// bounded by more than the plugins' own timeouts, so a call whose client
// went away still completes the relay. end releases both.
func (n *NRI) begin(ctx context.Context) (*adaptation.Adaptation, context.Context, func()) {
	a, done := n.use()
	if a == nil { // NRI off: no timer for a call that makes none
		return nil, ctx, done
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	return a, ctx, func() { cancel(); done() }
}

// RunPodSandbox tells plugins a pod is about to become ready; an error
// fails RunPodSandbox.
func (n *NRI) RunPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	if err := a.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: pod}); err != nil {
		return fmt.Errorf("NRI RunPodSandbox: %w", err)
	}
	return nil
}

// StopPodSandbox tells plugins a pod's containers are stopped.
func (n *NRI) StopPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	if err := a.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: pod}); err != nil {
		return fmt.Errorf("NRI StopPodSandbox: %w", err)
	}
	return nil
}

// RemovePodSandbox tells plugins a pod is gone.
func (n *NRI) RemovePodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	if err := a.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: pod}); err != nil {
		return fmt.Errorf("NRI RemovePodSandbox: %w", err)
	}
	return nil
}

// CreateContainer lets plugins adjust spec before the container exists;
// it applies their adjustment to spec. An error fails CreateContainer.
func (n *NRI) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container, spec *specs.Spec) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	resp, err := a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return fmt.Errorf("NRI CreateContainer: %w", err)
	}
	if err := Adjust(spec, resp.GetAdjust()); err != nil {
		return err
	}
	if err := n.apply(ctx, resp.GetUpdate(), resp.GetEvict()); err != nil {
		return fmt.Errorf("NRI CreateContainer: %w", err)
	}
	return nil
}

// StartContainer tells plugins a container is about to start; an error
// fails StartContainer.
func (n *NRI) StartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	if err := a.StartContainer(ctx, &api.StartContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return fmt.Errorf("NRI StartContainer: %w", err)
	}
	return nil
}

// UpdateContainer lets plugins amend a resource update of ctr; it returns
// the resources to apply (res, or what plugins asked for it instead).
func (n *NRI) UpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) (*api.LinuxResources, error) {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return res, nil
	}
	resp, err := a.UpdateContainer(ctx, &api.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: res})
	if err != nil {
		return nil, fmt.Errorf("NRI UpdateContainer: %w", err)
	}
	var others []*api.ContainerUpdate
	for _, u := range resp.GetUpdate() {
		if u.GetContainerId() == ctr.GetId() {
			res = u.GetLinux().GetResources()
			continue
		}
		others = append(others, u)
	}
	if err := n.apply(ctx, others, resp.GetEvict()); err != nil {
		return nil, fmt.Errorf("NRI UpdateContainer: %w", err)
	}
	return res, nil
}

// StopContainer tells plugins a container stopped.
func (n *NRI) StopContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	resp, err := a.StopContainer(ctx, &api.StopContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return fmt.Errorf("NRI StopContainer: %w", err)
	}
	return n.apply(ctx, resp.GetUpdate(), nil)
}

// Event relays a notification that needs no answer: PostCreate, PostStart,
// PostUpdate and RemoveContainer.
func (n *NRI) Event(ctx context.Context, ev api.Event, pod *api.PodSandbox, ctr *api.Container) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	var err error
	switch ev {
	case api.Event_POST_CREATE_CONTAINER:
		err = a.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: pod, Container: ctr})
	case api.Event_POST_START_CONTAINER:
		err = a.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: pod, Container: ctr})
	case api.Event_POST_UPDATE_CONTAINER:
		err = a.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: pod, Container: ctr})
	case api.Event_REMOVE_CONTAINER:
		err = a.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr})
	default:
		return fmt.Errorf("NRI event %v is not a notification", ev)
	}
	if err != nil {
		return fmt.Errorf("NRI %v: %w", ev, err)
	}
	return nil
}

// UpdatePodSandbox tells plugins a pod is being resized (the sum of its
// containers' resources, and its overhead); an error fails the update.
func (n *NRI) UpdatePodSandbox(ctx context.Context, pod *api.PodSandbox, overhead, res *specs.LinuxResources) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	req := &api.UpdatePodSandboxRequest{Pod: pod, LinuxResources: api.FromOCILinuxResources(res, nil)}
	if overhead != nil {
		req.OverheadLinuxResources = api.FromOCILinuxResources(overhead, nil)
	}
	if _, err := a.UpdatePodSandbox(ctx, req); err != nil {
		return fmt.Errorf("NRI UpdatePodSandbox: %w", err)
	}
	return nil
}

// PostUpdatePodSandbox tells plugins a pod was resized.
func (n *NRI) PostUpdatePodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	a, ctx, end := n.begin(ctx)
	defer end()
	if a == nil {
		return nil
	}
	if err := a.PostUpdatePodSandbox(ctx, &api.PostUpdatePodSandboxRequest{Pod: pod}); err != nil {
		return fmt.Errorf("NRI PostUpdatePodSandbox: %w", err)
	}
	return nil
}
