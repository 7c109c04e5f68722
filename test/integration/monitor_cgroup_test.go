package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A handler's monitor_cgroup holds its monitors: conmon for an oci handler,
// the pod's shim for a vm handler; the containers stay in their own.
func TestHandlerMonitorCgroup(t *testing.T) {
	const shimPath = "/usr/bin/containerd-shim-runc-v2"
	if _, err := os.Stat(shimPath); err != nil {
		t.Skip("no containerd-shim-runc-v2 (apt-get install containerd)")
	}
	mon := fmt.Sprintf("/cradle-it-mon-%d", os.Getpid())
	t.Cleanup(func() {
		for _, h := range cgroupHierarchies() {
			if err := os.Remove(filepath.Join(h, mon)); err != nil && !os.IsNotExist(err) {
				t.Errorf("monitor cgroup left behind: %v", err)
			}
		}
	})
	d := newDaemon(t, withConfig(fmt.Sprintf(`[runtime.handlers.monrunc]
type = "oci"
path = "/usr/sbin/runc"
monitor_cgroup = %q

[runtime.handlers.monvm]
type = "vm"
path = %q
runtime_path = "/usr/sbin/runc"
monitor_cgroup = %q
`, mon, shimPath, mon)))
	d.pull(t, busybox)
	d.pull(t, pauseImage)
	for _, tc := range []struct{ handler, monitor string }{
		{"monrunc", "conmon"},
		{"monvm", "containerd-shim"},
	} {
		t.Run(tc.handler, func(t *testing.T) {
			cfg := d.podConfig(t, "mon"+tc.handler)
			resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: tc.handler})
			if err != nil {
				t.Fatal(err)
			}
			pod := resp.GetPodSandboxId()
			t.Cleanup(func() { d.removePod(t, pod) })
			ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sleep", "1000"))
			var monPid int
			for _, p := range procs() {
				if strings.HasPrefix(p.comm, tc.monitor) && strings.Contains(p.cmdline, d.runroot) &&
					(tc.monitor != "conmon" || strings.Contains(p.cmdline, "-c "+ctr)) {
					monPid = p.pid
				}
			}
			if monPid == 0 {
				t.Fatalf("no %s process for container %s", tc.monitor, ctr)
			}
			if got := memoryCgroup(t, monPid); got != mon {
				t.Errorf("%s (pid %d) is in memory cgroup %q, want %q", tc.monitor, monPid, got, mon)
			}
			st, err := d.rt.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: ctr})
			if err != nil {
				t.Fatal(err)
			}
			r, err := d.execSync(t, ctr, 10, "cat", "/proc/1/cgroup")
			if err != nil || r.GetExitCode() != 0 {
				t.Fatalf("exec: %v %s", err, r.GetStderr())
			}
			if strings.Contains(string(r.GetStdout()), mon) {
				t.Errorf("container %s (%s) runs in the monitor cgroup:\n%s", ctr, st.GetStatus().GetState(), r.GetStdout())
			}
		})
	}
}

// memoryCgroup is pid's path in the memory hierarchy (cgroup v1).
func memoryCgroup(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && strings.Contains(","+f[1]+",", ",memory,") {
			return f[2]
		}
	}
	t.Fatalf("pid %d has no memory cgroup:\n%s", pid, data)
	return ""
}
