package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// subscribe opens a GetContainerEvents stream and, unless read is false,
// forwards its events to the returned channel until the stream ends.
func (d *daemon) subscribe(t *testing.T, c context.Context, read bool) <-chan *runtimeapi.ContainerEventResponse {
	t.Helper()
	stream, err := d.rt.GetContainerEvents(c, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	ch := make(chan *runtimeapi.ContainerEventResponse, 1000)
	if read {
		go func() {
			defer close(ch)
			for {
				ev, err := stream.Recv()
				if err != nil {
					return
				}
				ch <- ev
			}
		}()
	}
	return ch
}

// waitSubscribers waits until the daemon has registered n subscriptions:
// the stream opens before the server side subscribes.
func (d *daemon) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		b, _ := os.ReadFile(d.logPath)
		if got := strings.Count(string(b), "container events subscriber connected"); got < n {
			return fmt.Sprintf("%d of %d subscribers connected", got, n)
		}
		return ""
	})
}

// nextEvent returns the next event for container id, skipping others.
func nextEvent(t *testing.T, ch <-chan *runtimeapi.ContainerEventResponse, id string) *runtimeapi.ContainerEventResponse {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream ended")
			}
			if ev.GetContainerId() == id {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for %s within 30s", id)
		}
	}
}

func statusOf(ev *runtimeapi.ContainerEventResponse, id string) *runtimeapi.ContainerStatus {
	for _, st := range ev.GetContainersStatuses() {
		if st.GetId() == id {
			return st
		}
	}
	return nil
}

// Two subscribers both see a container's whole life, in order, with the
// pod's status, as the kubelet's evented PLEG needs.
func TestContainerEventsTwoSubscribers(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "events")
	pod := d.runPod(t, podCfg)
	c := ctx(t)
	subs := []<-chan *runtimeapi.ContainerEventResponse{d.subscribe(t, c, true), d.subscribe(t, c, true)}
	d.waitSubscribers(t, 2)

	id := d.startContainer(t, pod, podCfg, containerConfig("ev", "sleep", "1000"))
	if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := d.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}

	want := []struct {
		typ   runtimeapi.ContainerEventType
		state runtimeapi.ContainerState // of the container in the statuses; -1: absent
	}{
		{runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerState_CONTAINER_CREATED},
		{runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, runtimeapi.ContainerState_CONTAINER_RUNNING},
		{runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerState_CONTAINER_EXITED},
		{runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, -1},
	}
	for i, ch := range subs {
		var last int64
		for _, w := range want {
			ev := nextEvent(t, ch, id)
			if ev.GetContainerEventType() != w.typ {
				t.Fatalf("subscriber %d: got %v, want %v", i, ev.GetContainerEventType(), w.typ)
			}
			ps := ev.GetPodSandboxStatus()
			if ps.GetId() != pod || ps.GetMetadata().GetUid() != podCfg.GetMetadata().GetUid() || ps.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
				t.Errorf("subscriber %d, %v: pod status %v", i, w.typ, ps)
			}
			st := statusOf(ev, id)
			switch {
			case w.state < 0 && st != nil:
				t.Errorf("subscriber %d: the deleted container is still in the statuses", i)
			case w.state >= 0 && st.GetState() != w.state:
				t.Errorf("subscriber %d, %v: container status %v", i, w.typ, st)
			}
			if ev.GetCreatedAt() < last {
				t.Errorf("subscriber %d: event times go backwards", i)
			}
			last = ev.GetCreatedAt()
		}
	}
}

// A subscriber that never reads must not slow the runtime down; the one
// that reads still gets every event.
func TestContainerEventsSlowSubscriber(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "events-slow")
	pod := d.runPod(t, podCfg)
	c := ctx(t)
	_ = d.subscribe(t, c, false)
	reader := d.subscribe(t, c, true)
	d.waitSubscribers(t, 2)

	const n = 8
	var ids []string
	for i := range n {
		start := time.Now()
		resp, err := d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
			PodSandboxId: pod, SandboxConfig: podCfg, Config: containerConfig(fmt.Sprintf("slow%d", i), "sleep", "1000"),
		})
		if err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
		created := time.Since(start)
		start = time.Now()
		if _, err := d.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()}); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
		if started := time.Since(start); created > 10*time.Second || started > 10*time.Second {
			t.Errorf("container %d: create took %s, start %s", i, created, started)
		}
		ids = append(ids, resp.GetContainerId())
	}
	for _, id := range ids {
		if ev := nextEvent(t, reader, id); ev.GetContainerEventType() != runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT {
			t.Errorf("%s: first event %v", id, ev.GetContainerEventType())
		}
		if ev := nextEvent(t, reader, id); ev.GetContainerEventType() != runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT {
			t.Errorf("%s: second event %v", id, ev.GetContainerEventType())
		}
	}
	// Status calls are not held up either.
	start := time.Now()
	if _, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod}); err != nil || time.Since(start) > 5*time.Second {
		t.Errorf("PodSandboxStatus: %v after %s", err, time.Since(start))
	}
}

// A pod sandbox's life is in the container events as containerd sends it:
// the sandbox's ID as container_id, with the pod's status as of the event,
// including the last one for the deleted pod.
func TestSandboxEvents(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	c := ctx(t)
	ch := d.subscribe(t, c, true)
	d.waitSubscribers(t, 1)

	podCfg := d.podConfig(t, "sb-events")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("in-pod", "sleep", "1000"))
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	// A second stop changes nothing and tells nothing.
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox again: %v", err)
	}
	if _, err := d.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}

	want := []struct {
		typ      runtimeapi.ContainerEventType
		state    runtimeapi.PodSandboxState
		ctrState runtimeapi.ContainerState // of in-pod in the statuses; -1: absent
	}{
		{runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.PodSandboxState_SANDBOX_READY, -1},
		{runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, runtimeapi.PodSandboxState_SANDBOX_READY, -1},
		{runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.PodSandboxState_SANDBOX_NOTREADY, runtimeapi.ContainerState_CONTAINER_EXITED},
		{runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, runtimeapi.PodSandboxState_SANDBOX_NOTREADY, -1},
	}
	// Everything up to the pod's deletion, in order: a second STOPPED from
	// the repeated stop would show up before DELETED.
	var podEvents []*runtimeapi.ContainerEventResponse
	ctrEvents := 0
	for len(podEvents) == 0 || podEvents[len(podEvents)-1].GetContainerEventType() != runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream ended")
			}
			switch ev.GetContainerId() {
			case pod:
				podEvents = append(podEvents, ev)
			case ctr:
				ctrEvents++
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no DELETED event for the pod within 30s; got %d", len(podEvents))
		}
	}
	if len(podEvents) != len(want) {
		t.Fatalf("got %d pod events, want %d", len(podEvents), len(want))
	}
	for i, w := range want {
		ev := podEvents[i]
		if ev.GetContainerEventType() != w.typ {
			t.Fatalf("event %d: got %v, want %v", i, ev.GetContainerEventType(), w.typ)
		}
		ps := ev.GetPodSandboxStatus()
		if ps.GetId() != pod || ps.GetMetadata().GetUid() != podCfg.GetMetadata().GetUid() || ps.GetState() != w.state {
			t.Errorf("%v: pod status %v, want state %v", w.typ, ps, w.state)
		}
		st := statusOf(ev, ctr)
		switch {
		case w.ctrState < 0 && st != nil:
			t.Errorf("%v: container status %v, want none", w.typ, st)
		case w.ctrState >= 0 && st.GetState() != w.ctrState:
			t.Errorf("%v: container status %v, want %v", w.typ, st, w.ctrState)
		}
	}
	// created, started, stopped, deleted of the container itself.
	if ctrEvents != 4 {
		t.Errorf("%d events of the pod's container, want 4", ctrEvents)
	}
}

// A pod whose infra process dies, its PID holder or a pause container, is
// STOPPED in the events, as containerd tells of a sandbox that exited.
func TestSandboxEventsInfraExit(t *testing.T) {
	for _, handler := range []string{"", "paused"} {
		t.Run("handler="+handler, func(t *testing.T) {
			d := newDaemon(t, withConfig(pausedHandler))
			d.pull(t, pauseImage)
			cfg := d.podConfig(t, "sb-infra-exit")
			cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD // needs an infra process
			rresp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
			if err != nil {
				t.Fatal(err)
			}
			pod := rresp.GetPodSandboxId()
			t.Cleanup(func() { d.removePod(t, pod) })
			pid := 0
			if handler == "" {
				if h := d.holderPids(); len(h) == 1 {
					pid = h[0]
				}
			} else {
				infra := d.infraID(t, pod)
				for _, p := range procs() {
					if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.pid)); err == nil && strings.Contains(string(cg), "cradle-"+infra) {
						pid = p.pid
					}
				}
			}
			if pid == 0 {
				t.Fatal("no infra process found")
			}
			ch := d.subscribe(t, ctx(t), true)
			d.waitSubscribers(t, 1)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			ev := nextEvent(t, ch, pod)
			if ev.GetContainerEventType() != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT ||
				ev.GetPodSandboxStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("after the infra process died: %v with pod state %v, want STOPPED and NOTREADY",
					ev.GetContainerEventType(), ev.GetPodSandboxStatus().GetState())
			}
		})
	}
}
