package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cgroupFile reads a file of the pod cgroup parent, from the v1 hierarchy
// of its controller or from the unified one.
func cgroupFile(t *testing.T, parent, v1Ctrl, name string) string {
	t.Helper()
	p := filepath.Join("/sys/fs/cgroup", parent, name)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		// cpu is mounted alone or with cpuacct.
		p = filepath.Join("/sys/fs/cgroup", v1Ctrl, parent, name)
		if _, err := os.Stat(p); err != nil && v1Ctrl == "cpu" {
			p = filepath.Join("/sys/fs/cgroup", "cpu,cpuacct", parent, name)
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// UpdatePodSandboxResources sets the pod cgroup to its containers' total
// plus the overhead, again on every resize, and refuses bad requests.
func TestUpdatePodSandboxResources(t *testing.T) {
	requireRoot(t)
	// The pod's own cgroup, as the kubelet gives it; made by runc with the
	// first container and removed here, as the kubelet would, once the
	// daemon has removed the pod's containers.
	parent := fmt.Sprintf("/cradle-itest-resize-%d", os.Getpid())
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", parent))
		for _, dir := range dirs {
			if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pod cgroup %s: %v (a container's cgroup left in it?)", dir, err)
			}
		}
	})
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "resize")
	podCfg.Linux.CgroupParent = parent
	pod := d.runPod(t, podCfg)
	update := func(res, over *runtimeapi.LinuxContainerResources) error {
		_, err := d.rt.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: pod, Resources: res, Overhead: over})
		return err
	}
	const mi = 1 << 20
	// Before any container: nothing to resize yet, and no error.
	if err := update(&runtimeapi.LinuxContainerResources{CpuShares: 2}, nil); err != nil {
		t.Fatalf("UpdatePodSandboxResources before a container: %v", err)
	}
	d.startContainer(t, pod, podCfg, containerConfig("main", "sleep", "1000"))

	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}
	check := func(quota, period, shares, memory string) {
		t.Helper()
		if v2 {
			if got := cgroupFile(t, parent, "", "cpu.max"); got != quota+" "+period {
				t.Errorf("cpu.max %q, want %q", got, quota+" "+period)
			}
			if got := cgroupFile(t, parent, "", "memory.max"); got != memory {
				t.Errorf("memory.max %q, want %q", got, memory)
			}
			return
		}
		for file, want := range map[string]string{"cpu.cfs_quota_us": quota, "cpu.cfs_period_us": period, "cpu.shares": shares} {
			if got := cgroupFile(t, parent, "cpu", file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
		if got := cgroupFile(t, parent, "memory", "memory.limit_in_bytes"); got != memory {
			t.Errorf("memory.limit_in_bytes = %q, want %q", got, memory)
		}
	}
	if err := update(
		&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 256 * mi},
		&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 10000, CpuShares: 64, MemoryLimitInBytes: 32 * mi},
	); err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	check("60000", "100000", "576", fmt.Sprint(288*mi))

	// Larger CPU, and no memory limit any more.
	if err := update(&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 150000, CpuShares: 1536}, nil); err != nil {
		t.Fatalf("UpdatePodSandboxResources again: %v", err)
	}
	unlimited := "9223372036854771712" // v1's "no limit", page aligned
	if v2 {
		unlimited = "max"
	}
	check("150000", "100000", "1536", unlimited)

	for _, c := range []struct {
		req   *runtimeapi.UpdatePodSandboxResourcesRequest
		code  codes.Code
		field string
	}{
		{&runtimeapi.UpdatePodSandboxResourcesRequest{Resources: &runtimeapi.LinuxContainerResources{}}, codes.InvalidArgument, "pod_sandbox_id"},
		{&runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: pod}, codes.InvalidArgument, "resources"},
		{&runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: pod, Resources: &runtimeapi.LinuxContainerResources{CpuPeriod: 100}}, codes.InvalidArgument, "resources.cpu_period"},
		{&runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "nope", Resources: &runtimeapi.LinuxContainerResources{}}, codes.NotFound, "pod_sandbox_id"},
	} {
		_, err := d.rt.UpdatePodSandboxResources(ctx(t), c.req)
		if status.Code(err) != c.code || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%v: %v, want %v naming %s", c.req, err, c.code, c.field)
		}
	}
	// The bad requests changed nothing.
	check("150000", "100000", "1536", unlimited)
}

// A vm handler's sandbox task gets the pod's new sizing through the
// shim's Update (runc's shim applies it to the sandbox's cgroup; Kata
// resizes its VM).
func TestVMHandlerUpdatePodSandboxResources(t *testing.T) {
	for name, shimPath := range vmShims(t) {
		t.Run(name, func(t *testing.T) {
			d, _ := vmDaemon(t, shimPath)
			pod, _ := d.runVMPod(t, "vmresize")
			infra := d.infraID(t, pod)
			const mi = 1 << 20
			if _, err := d.rt.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
				PodSandboxId: pod,
				Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 200 * mi},
				Overhead:     &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 * mi},
			}); err != nil {
				t.Fatalf("UpdatePodSandboxResources: %v", err)
			}
			task := filepath.Join(d.cgroup, "cradle-"+infra)
			file := "memory.limit_in_bytes"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				file = "memory.max"
			}
			if got := cgroupFile(t, task, "memory", file); got != fmt.Sprint(216*mi) {
				t.Errorf("the sandbox task's %s = %s, want %d", file, got, 216*mi)
			}
		})
	}
}

// UpdatePodSandbox records the resize with the memory limits it was told
// of: "UpdatePodSandbox(<resources>+<overhead>)".
func (p *nriRecorder) UpdatePodSandbox(_ context.Context, pod *api.PodSandbox, overhead, res *api.LinuxResources) error {
	p.record(fmt.Sprintf("UpdatePodSandbox(%d+%d)", res.GetMemory().GetLimit().GetValue(), overhead.GetMemory().GetLimit().GetValue()), pod.GetId())
	return nil
}

func (p *nriRecorder) PostUpdatePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("PostUpdatePodSandbox", pod.GetId())
	return nil
}

// NRI plugins hear of a pod resize, with the resources and the overhead,
// before and after it.
func TestNRIUpdatePodSandbox(t *testing.T) {
	d := newDaemon(t)
	p := d.connectNRI(t)
	pod := d.runPod(t, d.podConfig(t, "nri-resize"))
	if _, err := d.rt.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: pod,
		Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 100 << 20},
		Overhead:     &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 10 << 20},
	}); err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	want := []string{"RunPodSandbox", fmt.Sprintf("UpdatePodSandbox(%d+%d)", 100<<20, 10<<20), "PostUpdatePodSandbox"}
	eventually(t, 10*time.Second, func() string {
		if got := p.eventsOf(pod); !slices.Equal(got, want) {
			return "NRI events " + strings.Join(got, ",") + "; want " + strings.Join(want, ",")
		}
		return ""
	})
}
