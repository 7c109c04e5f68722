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
			// The leak check's idea of the shim's socket must match the
			// shim's, or it could never see one left behind.
			live := 0
			for _, s := range d.shimSockets() {
				if _, err := os.Lstat(s); err == nil {
					live++
				}
			}
			if live != 1 {
				t.Errorf("%d of the expected shim sockets %v exist, want 1", live, d.shimSockets())
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

// TestVMHandlerExitedBeforeRestart: a container that exited before a
// restart of cradle is still deleted in its shim by RemoveContainer, so its
// runc state goes then, not only with the pod.
func TestVMHandlerExitedBeforeRestart(t *testing.T) {
	d, _ := vmDaemon(t, "/usr/bin/containerd-shim-runc-v2")
	pod, cfg := d.runVMPod(t, "vmexited")
	ctr := d.startContainer(t, pod, cfg, containerConfig("done", "sh", "-c", "exit 7"))
	eventually(t, 30*time.Second, func() string {
		if st := d.containerStatus(t, ctr); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 7 {
			return fmt.Sprintf("container %s exit %d, want EXITED 7", st.GetState(), st.GetExitCode())
		}
		return ""
	})
	// The shim's runc keeps its state under the handler's root, per namespace.
	state := filepath.Join(d.runroot, "runtime", "vm", "k8s.io", ctr)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("runc state of the exited container: %v, want it until RemoveContainer", err)
	}
	d.kill9()
	d.start()
	if _, err := d.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: ctr}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("runc state left after RemoveContainer: %v (the shim never saw the delete)", err)
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

// TestVMHandlerStreamingAndOOM drives a vm pod through the streaming
// server (attach with a terminal, port-forward into the pinned netns),
// rotates a log, and records an OOM kill from the shim's /tasks/oom.
func TestVMHandlerStreamingAndOOM(t *testing.T) {
	d, _ := vmDaemon(t, "/usr/bin/containerd-shim-runc-v2")
	pod, cfg := d.runVMPod(t, "vmstream")

	t.Run("attach", func(t *testing.T) {
		c := containerConfig("tty", "sh")
		c.Tty, c.Stdin = true, true
		ctr := d.startContainer(t, pod, cfg, c)
		resp, err := d.rt.Attach(ctx(t), &runtimeapi.AttachRequest{ContainerId: ctr, Tty: true, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		s := openSession(t, resp.GetUrl(), true, true, false, true)
		s.resizeTo(t, 100, 30)
		s.typeUntil(t, "stty size\n", "30 100")
		s.typeUntil(t, "echo vm-$((6*7))\n", "vm-42")
		s.conn.Close()
	})

	t.Run("port-forward", func(t *testing.T) {
		d.startContainer(t, pod, cfg, containerConfig("nc", "nc", "-ll", "-p", "8080", "-e", "echo", "hi from the vm pod"))
		eventually(t, 10*time.Second, func() string {
			got, err := d.forwardOnce(t, pod, 8080)
			if err != nil {
				return err.Error()
			}
			if got != "hi from the vm pod\n" {
				return fmt.Sprintf("read %q", got)
			}
			return ""
		})
	})

	t.Run("log rotation", func(t *testing.T) {
		c := containerConfig("chatty", "sh", "-c", "echo one; read x; echo two; exec sleep 1000")
		c.Stdin = true
		ctr := d.startContainer(t, pod, cfg, c)
		path := filepath.Join(cfg.LogDirectory, "chatty.log")
		logOf(t, path, "one")
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.rt.ReopenContainerLog(ctx(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: ctr}); err != nil {
			t.Fatalf("ReopenContainerLog: %v", err)
		}
		resp, err := d.rt.Attach(ctx(t), &runtimeapi.AttachRequest{ContainerId: ctr, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		s := openSession(t, resp.GetUrl(), true, true, false, false)
		if _, err := s.stdin.Write([]byte("go\n")); err != nil {
			t.Fatal(err)
		}
		logOf(t, path, "two")
		s.conn.Close()
		if old, err := os.ReadFile(path + ".1"); err != nil || strings.Contains(string(old), "two") {
			t.Errorf("rotated log: %q, %v", old, err)
		}
	})

	t.Run("oom", func(t *testing.T) {
		c := containerConfig("hog", "sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived")
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
		id := d.startContainer(t, pod, cfg, c)
		st := d.waitState(t, id, runtimeapi.ContainerState_CONTAINER_EXITED)
		if st.GetReason() != "OOMKilled" || st.GetExitCode() != 137 {
			t.Errorf("reason %q exit %d, want OOMKilled 137", st.GetReason(), st.GetExitCode())
		}
	})
}

// TestKubeletVMHandler runs the kubelet's web pod (an init container, exec
// and HTTP probes, limits, a client over the shared netns) with the vm
// handler as the default: every call the kubelet makes goes to the shim.
func TestKubeletVMHandler(t *testing.T) {
	d := newDaemon(t, withConfig(`[runtime.handlers.vm]
type = "vm"
path = "/usr/bin/containerd-shim-runc-v2"
runtime_path = "/usr/sbin/runc"
`), withDefaultHandler("vm"))
	k := newKubelet(t, d, "")
	k.manifest("web", webPod)
	web := k.waitPod("web", 3*time.Minute, "web Running and Ready", allRunningReady)
	t.Logf("kubelet with the vm handler: %v", web)
	if init := web.container("init"); init.State.Terminated == nil || init.State.Terminated.ExitCode != 0 {
		t.Errorf("init container: %v, want terminated with 0", init)
	}
	logOf(t, filepath.Join(k.logDir(web, "client"), "0.log"), "hello from init")
	if pids := d.shimPids(); len(pids) != 1 {
		t.Errorf("shims for the kubelet's pod: %v, want one", pids)
	}
}
