package integration

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nriRecorder is an NRI plugin that records every event it gets as
// "Event:id" and injects an environment variable into each container.
type nriRecorder struct {
	mu     sync.Mutex
	events []string
	synced chan struct{}
	once   sync.Once
	// failRun makes the next RunPodSandbox hook fail.
	failRun bool
}

func (p *nriRecorder) record(ev, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev+":"+id)
}

// eventsOf lists the recorded events of pod or container ids, without them.
func (p *nriRecorder) eventsOf(ids ...string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		ev, id, _ := strings.Cut(e, ":")
		if slices.Contains(ids, id) {
			out = append(out, ev)
		}
	}
	return out
}

func (p *nriRecorder) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	for _, pod := range pods {
		p.record("Synchronize", pod.GetId())
	}
	for _, c := range ctrs {
		p.record("Synchronize", c.GetId())
	}
	p.once.Do(func() { close(p.synced) })
	return nil, nil
}

func (p *nriRecorder) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox", pod.GetId())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failRun {
		p.failRun = false
		return errors.New("induced RunPodSandbox failure")
	}
	return nil
}

func (p *nriRecorder) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox", pod.GetId())
	return nil
}

func (p *nriRecorder) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox", pod.GetId())
	return nil
}

func (p *nriRecorder) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer", c.GetId())
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("NRI_INJECTED", "hello-from-nri")
	return adj, nil, nil
}

func (p *nriRecorder) PostCreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("PostCreateContainer", c.GetId())
	return nil
}

func (p *nriRecorder) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("StartContainer", c.GetId())
	return nil
}

func (p *nriRecorder) PostStartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("PostStartContainer", c.GetId())
	return nil
}

func (p *nriRecorder) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer", c.GetId())
	return nil, nil
}

func (p *nriRecorder) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("RemoveContainer", c.GetId())
	return nil
}

// connectNRI connects a recorder to the daemon's NRI socket and waits
// until the daemon synchronized it.
func (d *daemon) connectNRI(t *testing.T) *nriRecorder {
	t.Helper()
	p, _ := d.connectNRIAt(t, d.nriSocket())
	return p
}

// connectNRIAt connects a recorder to the NRI socket at path; the channel
// gets the plugin's end (the daemon closing the connection ends it).
func (d *daemon) connectNRIAt(t *testing.T, path string) (*nriRecorder, <-chan error) {
	t.Helper()
	p := &nriRecorder{synced: make(chan struct{})}
	s, err := stub.New(p, stub.WithPluginName("itest"), stub.WithPluginIdx("10"), stub.WithSocketPath(path))
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ended := make(chan error, 1)
	go func() {
		err := s.Run(c)
		done <- err
		ended <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("NRI stub did not stop")
		}
	})
	select {
	case <-p.synced:
	case err := <-done:
		d.dumpLog()
		t.Fatalf("NRI stub exited: %v", err)
	case <-time.After(20 * time.Second):
		d.dumpLog()
		t.Fatal("NRI stub was not synchronized within 20s")
	}
	return p, ended
}

// A plugin sees a pod's and a container's lifecycle in order, and its
// CreateContainer adjustment reaches the container.
func TestNRIHookOrderAndAdjustment(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	p := d.connectNRI(t)
	cfg := d.podConfig(t, "nri")
	pod := d.runPod(t, cfg)
	ctr := d.startContainer(t, pod, cfg, containerConfig("env", "sh", "-c", "echo NRI=$NRI_INJECTED; exec sleep 1000"))
	logOf(t, filepath.Join(cfg.LogDirectory, "env.log"), "NRI=hello-from-nri")
	if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: ctr, Timeout: 1}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := d.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: ctr}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	// Twice: the second stop of a stopped pod tells plugins nothing.
	for range 2 {
		if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
	}
	if _, err := d.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	want := []string{
		"RunPodSandbox", "CreateContainer", "PostCreateContainer", "StartContainer", "PostStartContainer",
		"StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox",
	}
	eventually(t, 10*time.Second, func() string {
		if got := p.eventsOf(pod, ctr); !slices.Equal(got, want) {
			return "NRI events " + strings.Join(got, ",") + "; want " + strings.Join(want, ",")
		}
		return ""
	})
}

// A failing RunPodSandbox hook fails the call and leaves no pod behind; a
// retry under the same name succeeds.
func TestNRIRunPodSandboxHookFailure(t *testing.T) {
	d := newDaemon(t)
	p := d.connectNRI(t)
	p.mu.Lock()
	p.failRun = true
	p.mu.Unlock()
	cfg := d.podConfig(t, "nri-fail")
	if _, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg}); err == nil {
		t.Fatal("RunPodSandbox succeeded despite the failing NRI hook")
	}
	list, err := d.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetItems()) != 0 {
		t.Errorf("failed RunPodSandbox left pods: %v", list.GetItems())
	}
	d.runPod(t, cfg)
}
