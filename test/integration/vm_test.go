package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// vmShims are the shims the vm handler is tested with: Debian's 1.6 shim,
// and a containerd 2.x one when CRADLE_TEST_SHIM2 names it.
func vmShims(t *testing.T) map[string]string {
	shims := map[string]string{}
	if _, err := os.Stat("/usr/bin/containerd-shim-runc-v2"); err == nil {
		shims["shim1.6"] = "/usr/bin/containerd-shim-runc-v2"
	}
	if p := os.Getenv("CRADLE_TEST_SHIM2"); p != "" {
		shims["shim2.x"] = p
	}
	if len(shims) == 0 {
		t.Skip("no containerd-shim-runc-v2 (apt-get install containerd)")
	}
	return shims
}

// vmDaemon runs a daemon whose "vm" handler drives the shim, with runc
// wrapped by sandboxRecorder.
func vmDaemon(t *testing.T, shimPath string) (*daemon, string) {
	wrapper, record := sandboxRecorder(t)
	d := newDaemon(t, withConfig(fmt.Sprintf(`[runtime.handlers.vm]
type = "vm"
path = %q
runtime_path = %q
`, shimPath, wrapper)))
	d.pull(t, pauseImage)
	d.pull(t, busybox)
	return d, record
}

func (d *daemon) runVMPod(t *testing.T, name string) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	cfg := d.podConfig(t, name)
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "vm"})
	if err != nil {
		d.dumpLog()
		t.Fatalf("RunPodSandbox with the vm handler: %v", err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() {
		if d.cmd != nil {
			d.removePod(t, pod)
		}
	})
	return pod, cfg
}

// shimPids are the shim processes serving this daemon.
func (d *daemon) shimPids() []int {
	out, _ := exec.Command("pgrep", "-f", "containerd-shim.*"+d.runroot).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

func (d *daemon) netnsOf(t *testing.T, ctr string) string {
	t.Helper()
	r, err := d.execSync(t, ctr, 10, "readlink", "/proc/self/ns/net")
	if err != nil || r.GetExitCode() != 0 {
		t.Fatalf("exec readlink in %s: %v %s", ctr, err, r.GetStderr())
	}
	return strings.TrimSpace(string(r.GetStdout()))
}

// TestVMHandlerPod runs a pod of two containers through each shim: the
// sandbox task is created once its netns is pinned and networked, one
// shim serves the pod, the containers share the pod's netns, exec, logs
// and stop work, and removing the pod leaves no shim, socket or state.
func TestVMHandlerPod(t *testing.T) {
	for name, shimPath := range vmShims(t) {
		t.Run(name, func(t *testing.T) {
			d, record := vmDaemon(t, shimPath)
			pod, cfg := d.runVMPod(t, "vmpod")
			d.assertSandboxFirst(t, pod, record)
			web := d.startContainer(t, pod, cfg, containerConfig("web", "sh", "-c", "echo hello from vm; exec sleep 1000"))
			side := d.startContainer(t, pod, cfg, containerConfig("side", "sleep", "1000"))
			if got := logOf(t, filepath.Join(cfg.LogDirectory, "web.log"), "hello from vm"); got == "" {
				t.Fatal("no log line")
			}
			if pids := d.shimPids(); len(pids) != 1 {
				t.Errorf("shims serving the pod: %v, want one", pids)
			}
			nsWeb, nsSide := d.netnsOf(t, web), d.netnsOf(t, side)
			if nsWeb != nsSide || !strings.HasPrefix(nsWeb, "net:[") {
				t.Errorf("containers' network namespaces: %q and %q, want the same", nsWeb, nsSide)
			}
			r, err := d.execSync(t, side, 10, "sh", "-c", "echo out; exit 3")
			if err != nil || r.GetExitCode() != 3 || strings.TrimSpace(string(r.GetStdout())) != "out" {
				t.Errorf("ExecSync: %v, exit %d, stdout %q", err, r.GetExitCode(), r.GetStdout())
			}
			if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: side, Timeout: 2}); err != nil {
				t.Fatal(err)
			}
			if st := d.containerStatus(t, side); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 137 {
				t.Errorf("stopped container: %s exit %d (%s), want EXITED 137", st.GetState(), st.GetExitCode(), st.GetReason())
			}
			d.removePod(t, pod)
			if pids := d.shimPids(); len(pids) != 0 {
				t.Errorf("shims left after the pod was removed: %v", pids)
			}
		})
	}
}

// TestVMHandlerDaemonRestart kills cradle with SIGKILL while a vm pod runs:
// after the restart the pod and its container are as they were, still
// running, and exec, stop and remove work through the restored shim.
func TestVMHandlerDaemonRestart(t *testing.T) {
	d, _ := vmDaemon(t, "/usr/bin/containerd-shim-runc-v2")
	pod, cfg := d.runVMPod(t, "vmrestart")
	ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sh", "-c", "echo before; exec sleep 1000"))
	logOf(t, filepath.Join(cfg.LogDirectory, "c.log"), "before")
	before := d.containerStatus(t, ctr)
	shims := d.shimPids()
	d.kill9()
	d.start()
	after := d.containerStatus(t, ctr)
	if after.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || after.GetStartedAt() != before.GetStartedAt() {
		t.Errorf("after the restart: %s started %d, before: %s started %d", after.GetState(), after.GetStartedAt(), before.GetState(), before.GetStartedAt())
	}
	if got := d.shimPids(); fmt.Sprint(got) != fmt.Sprint(shims) {
		t.Errorf("shims after the restart: %v, before: %v", got, shims)
	}
	if r, err := d.execSync(t, ctr, 10, "echo", "still"); err != nil || strings.TrimSpace(string(r.GetStdout())) != "still" {
		t.Errorf("exec after the restart: %v %q", err, r.GetStdout())
	}
	d.removePod(t, pod)
}

// TestVMHandlerShimKilled kills the pod's shim with SIGKILL: the
// container's exit is recorded, and removing the pod leaves nothing.
func TestVMHandlerShimKilled(t *testing.T) {
	d, _ := vmDaemon(t, "/usr/bin/containerd-shim-runc-v2")
	pod, cfg := d.runVMPod(t, "vmshimkill")
	ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sleep", "1000"))
	shims := d.shimPids()
	if len(shims) != 1 {
		t.Fatalf("shims: %v", shims)
	}
	if err := exec.Command("kill", "-9", strconv.Itoa(shims[0])).Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: ctr, Timeout: 1}); err != nil {
		t.Fatalf("StopContainer after the shim died: %v", err)
	}
	eventually(t, 30*time.Second, func() string {
		if st := d.containerStatus(t, ctr); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
			return "container still " + st.GetState().String()
		}
		return ""
	})
	d.removePod(t, pod)
}
