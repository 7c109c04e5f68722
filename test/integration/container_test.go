package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (d *daemon) waitState(t *testing.T, id string, want runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	t.Helper()
	var st *runtimeapi.ContainerStatus
	eventually(t, 15*time.Second, func() string {
		st = d.containerStatus(t, id)
		if st.GetState() != want {
			return fmt.Sprintf("container %s is %v, want %v", id, st.GetState(), want)
		}
		return ""
	})
	return st
}

// Exits are noticed at once with their code and reason.
func TestContainerExitCodesAndReasons(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "exits")
	pod := d.runPod(t, cfg)
	ok := d.startContainer(t, pod, cfg, containerConfig("ok", "true"))
	bad := d.startContainer(t, pod, cfg, containerConfig("bad", "sh", "-c", "exit 3"))
	st := d.waitState(t, ok, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.GetExitCode() != 0 || st.GetReason() != "Completed" || st.GetFinishedAt() < st.GetStartedAt() || st.GetStartedAt() < st.GetCreatedAt() {
		t.Errorf("ok: exit %d reason %q times %d/%d/%d", st.GetExitCode(), st.GetReason(), st.GetCreatedAt(), st.GetStartedAt(), st.GetFinishedAt())
	}
	st = d.waitState(t, bad, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.GetExitCode() != 3 || st.GetReason() != "Error" {
		t.Errorf("bad: exit %d reason %q", st.GetExitCode(), st.GetReason())
	}
}

// A container killed for running out of memory reports OOMKilled.
func TestContainerOOMKilled(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "oom")
	pod := d.runPod(t, cfg)
	c := containerConfig("hog", "sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived")
	c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
	id := d.startContainer(t, pod, cfg, c)
	st := d.waitState(t, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.GetReason() != "OOMKilled" {
		t.Errorf("reason %q exit %d, want OOMKilled", st.GetReason(), st.GetExitCode())
	}
}

// StopContainer: the stop signal, then SIGKILL after the timeout; 0 kills
// at once; stopping a stopped container is fine.
func TestStopContainerTimeouts(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "stop")
	pod := d.runPod(t, cfg)
	// sleep as PID 1 ignores SIGTERM: only SIGKILL after the timeout ends it.
	stubborn := d.startContainer(t, pod, cfg, containerConfig("stubborn", "sleep", "1000"))
	polite := d.startContainer(t, pod, cfg, containerConfig("polite", "sh", "-c", "trap 'exit 0' TERM; echo trapped; while true; do sleep 0.1; done"))
	immediate := d.startContainer(t, pod, cfg, containerConfig("immediate", "sleep", "1000"))
	logOf(t, filepath.Join(cfg.LogDirectory, "polite.log"), "trapped")

	stop := func(id string, timeout int64) time.Duration {
		start := time.Now()
		if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: timeout}); err != nil {
			t.Fatalf("StopContainer: %v", err)
		}
		return time.Since(start)
	}
	if took := stop(polite, 10); took > 5*time.Second {
		t.Errorf("a container that exits on SIGTERM took %s to stop", took)
	}
	if st := d.containerStatus(t, polite); st.GetExitCode() != 0 {
		t.Errorf("polite exit code %d", st.GetExitCode())
	}
	if took := stop(stubborn, 2); took < 2*time.Second || took > 8*time.Second {
		t.Errorf("stop with timeout 2 of a container ignoring SIGTERM took %s", took)
	}
	if st := d.containerStatus(t, stubborn); st.GetExitCode() != 137 {
		t.Errorf("stubborn exit code %d, want 137", st.GetExitCode())
	}
	if took := stop(immediate, 0); took > 2*time.Second {
		t.Errorf("stop with timeout 0 took %s", took)
	}
	stop(immediate, 0) // again: fine
}

// Long lines are split with P tags, and ReopenContainerLog works after a
// rename.
func TestContainerLogsSplitAndReopen(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "logs")
	pod := d.runPod(t, cfg)
	id := d.startContainer(t, pod, cfg, containerConfig("long", "sh", "-c", "head -c 20000 /dev/zero | tr '\\0' a; echo; echo first-done; sleep 2; echo after-reopen; sleep 1000"))
	path := filepath.Join(cfg.LogDirectory, "long.log")
	logOf(t, path, "first-done")
	b, _ := os.ReadFile(path)
	// From the first chunk of a's up to the closing F, the bodies rebuild
	// the 20000-byte line; conmon splits it at 8192-byte reads.
	var tags []string
	body, in := "", false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 3 {
			continue
		}
		msg := ""
		if len(f) == 4 {
			msg = f[3]
		}
		if !in && !strings.HasPrefix(msg, "aaa") {
			continue
		}
		in = true
		tags, body = append(tags, f[2]), body+msg
		if f[2] == "F" {
			break
		}
	}
	if len(tags) < 3 || tags[len(tags)-1] != "F" || strings.Count(strings.Join(tags, ""), "P") < 2 || len(body) != 20000 {
		t.Errorf("a 20000-byte line was logged as tags %v with %d bytes; want P P ... F with 20000", tags, len(body))
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.rt.ReopenContainerLog(ctx(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	logOf(t, path, "after-reopen")
}

func TestListContainersFilters(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfgA, cfgB := d.podConfig(t, "lista"), d.podConfig(t, "listb")
	a, b := d.runPod(t, cfgA), d.runPod(t, cfgB)
	ca := containerConfig("a", "sleep", "1000")
	ca.Labels = map[string]string{"app": "x"}
	idA := d.startContainer(t, a, cfgA, ca)
	resp, err := d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: b, Config: containerConfig("b", "sleep", "1000"), SandboxConfig: cfgB})
	if err != nil {
		t.Fatal(err)
	}
	idB := resp.GetContainerId()
	cases := []struct {
		name   string
		filter *runtimeapi.ContainerFilter
		want   []string
	}{
		{"all", nil, []string{idA, idB}},
		{"id prefix", &runtimeapi.ContainerFilter{Id: idA[:12]}, []string{idA}},
		{"running", &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}, []string{idA}},
		{"created", &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_CREATED}}, []string{idB}},
		{"pod", &runtimeapi.ContainerFilter{PodSandboxId: b}, []string{idB}},
		{"labels", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "x"}}, []string{idA}},
		{"labels none", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "y"}}, nil},
	}
	for _, c := range cases {
		list, err := d.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: c.filter})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range list.GetContainers() {
			got = append(got, x.GetId())
		}
		if strings.Join(sorted(got), ",") != strings.Join(sorted(c.want), ",") {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestUpdateContainerResources(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "update")
	pod := d.runPod(t, cfg)
	id := d.startContainer(t, pod, cfg, containerConfig("u", "sleep", "1000"))
	res := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512}
	if _, err := d.rt.UpdateContainerResources(ctx(t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: res}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", d.cgroup, "cradle-"+id, "memory.limit_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != fmt.Sprint(64<<20) {
		t.Errorf("memory limit in cgroup %s, want %d", b, 64<<20)
	}
	if got := d.containerStatus(t, id).GetResources().GetLinux().GetMemoryLimitInBytes(); got != 64<<20 {
		t.Errorf("status reports memory limit %d", got)
	}
}

// ContainerStatus and ReopenContainerLog never wait behind a stop in
// progress.
func TestStatusAndReopenDoNotWaitBehindStop(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "nowait")
	pod := d.runPod(t, cfg)
	id := d.startContainer(t, pod, cfg, containerConfig("slow", "sleep", "1000"))
	done := make(chan error, 1)
	go func() {
		_, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 4})
		done <- err
	}()
	d.waitLog(t, `msg="stop signal sent; waiting for the exit" container=`+id)
	start := time.Now()
	if st := d.containerStatus(t, id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("state during stop: %v", st.GetState())
	}
	path := filepath.Join(cfg.LogDirectory, "slow.log")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.rt.ReopenContainerLog(ctx(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Errorf("ReopenContainerLog during stop: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("status and reopen took %s during a stop", took)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The kubelet creates a container from the image's ID and passes the pod's
// image name as user_specified_image; status and list report that name (the
// pod status shows it, and image updates are judged by it), the ID stays in
// image_ref and image_id.
func TestContainerReportsUserSpecifiedImage(t *testing.T) {
	d := newDaemon(t)
	id := d.pull(t, busybox)
	cfg := d.podConfig(t, "image-name")
	pod := d.runPod(t, cfg)
	c := containerConfig("by-id", "sleep", "60")
	c.Image = &runtimeapi.ImageSpec{Image: id, UserSpecifiedImage: busybox}
	byID := d.startContainer(t, pod, cfg, c)
	plain := d.startContainer(t, pod, cfg, containerConfig("by-name", "sleep", "60"))

	st := d.containerStatus(t, byID)
	if st.GetImage().GetImage() != busybox || st.GetImage().GetUserSpecifiedImage() != busybox || st.GetImageRef() != id || st.GetImageId() != id {
		t.Errorf("status of the container made from the ID: image %v, image_ref %q, image_id %q; want image %q, ref and id %q", st.GetImage(), st.GetImageRef(), st.GetImageId(), busybox, id)
	}
	if got := d.containerStatus(t, plain).GetImage().GetImage(); got != busybox {
		t.Errorf("status of the container made from the name: image %q, want %q", got, busybox)
	}
	resp, err := d.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: byID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetContainers()) != 1 || resp.GetContainers()[0].GetImage().GetImage() != busybox {
		t.Errorf("ListContainers: %v, want one container with image %q", resp.GetContainers(), busybox)
	}
}
