package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// snapshot is everything a client can see, rendered for comparison.
func (d *daemon) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	m := protojson.MarshalOptions{Multiline: true}
	pods, err := d.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(m.Format(pods))
	for _, p := range pods.GetItems() {
		st, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.GetId(), Verbose: true})
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(m.Format(st))
	}
	ctrs, err := d.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(m.Format(ctrs))
	for _, c := range ctrs.GetContainers() {
		st, err := d.rt.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: c.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(m.Format(st))
	}
	return b.String()
}

// A restart, clean or by kill -9, changes nothing a client can see; the
// containers keep running, and logs and stop still work.
func TestRestartIsTransparent(t *testing.T) {
	for _, mode := range []string{"sigterm", "kill9"} {
		t.Run(mode, func(t *testing.T) {
			d := newDaemon(t)
			d.pull(t, busybox)
			cfg := d.podConfig(t, "restart")
			pod := d.runPod(t, cfg)
			running := d.startContainer(t, pod, cfg, containerConfig("running", "sh", "-c", "while true; do echo tick; sleep 0.2; done"))
			exited := d.startContainer(t, pod, cfg, containerConfig("exited", "sh", "-c", "exit 5"))
			if _, err := d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("created", "sleep", "1"), SandboxConfig: cfg}); err != nil {
				t.Fatal(err)
			}
			d.waitState(t, exited, runtimeapi.ContainerState_CONTAINER_EXITED)
			stopped := d.runPod(t, d.podConfig(t, "stopped"))
			if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: stopped}); err != nil {
				t.Fatal(err)
			}
			before := d.snapshot(t)
			if mode == "kill9" {
				d.kill9()
				d.start()
			} else {
				d.restart()
			}
			after := d.snapshot(t)
			if before != after {
				t.Errorf("state changed across restart.\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if st := d.containerStatus(t, running); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("running container is %v after restart", st.GetState())
			}
			// Logs keep flowing and stop still works.
			path := filepath.Join(cfg.LogDirectory, "running.log")
			n0, _ := os.ReadFile(path)
			eventually(t, 10*time.Second, func() string {
				if n1, _ := os.ReadFile(path); len(n1) > len(n0) {
					return ""
				}
				return "log stopped growing after the restart"
			})
			if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: running, Timeout: 0}); err != nil {
				t.Fatalf("stop after restart: %v", err)
			}
			if st := d.containerStatus(t, running); st.GetExitCode() != 137 {
				t.Errorf("exit code after stop %d", st.GetExitCode())
			}
		})
	}
}

// A container that exits while the daemon is down is reported with its
// real exit code after the restart.
func TestExitWhileDaemonDown(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "down")
	pod := d.runPod(t, cfg)
	id := d.startContainer(t, pod, cfg, containerConfig("late", "sh", "-c", "sleep 2; exit 42"))
	d.kill9()
	// conmon, not the daemon, records the exit: wait for its exit file.
	eventually(t, 15*time.Second, func() string {
		if _, err := os.Stat(filepath.Join(d.runroot, "exits", id)); err != nil {
			return "no exit file yet: " + err.Error()
		}
		return ""
	})
	d.start()
	st := d.waitState(t, id, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.GetExitCode() != 42 {
		t.Errorf("exit code %d, want 42", st.GetExitCode())
	}
}

// kill -9 at each step of CreateContainer, StartContainer and
// RemovePodSandbox: after a restart the CRI calls can finish the job.
func TestCrashDuringContainerLifecycle(t *testing.T) {
	for _, fp := range []string{"create:after-record", "start:before-runtime", "start:after-runtime", "stop:after-containers", "stop:after-cni"} {
		t.Run(fp, func(t *testing.T) {
			d := newDaemon(t, withEnv("CRADLE_TEST_FAILPOINTS="+fp))
			d.pull(t, busybox)
			cfg := d.podConfig(t, "ctrcrash")
			pod := d.runPod(t, cfg)
			errc := make(chan error, 1)
			go func() {
				var err error
				switch {
				case strings.HasPrefix(fp, "create:"):
					_, err = d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("c", "sleep", "1000"), SandboxConfig: cfg})
				case strings.HasPrefix(fp, "start:"):
					var resp *runtimeapi.CreateContainerResponse
					resp, err = d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("c", "sleep", "1000"), SandboxConfig: cfg})
					if err == nil {
						_, err = d.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()})
					}
				default:
					d.startContainerNoFail(pod, cfg)
					_, err = d.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod})
				}
				errc <- err
			}()
			d.waitCrash(60 * time.Second)
			if err := <-errc; err == nil {
				t.Fatal("the call succeeded across a crash")
			}
			d.env = nil
			d.start()
			ctrs, err := d.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range ctrs.GetContainers() {
				if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: c.GetId()}); err != nil {
					t.Errorf("stop %s: %v", c.GetId(), err)
				}
				if _, err := d.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: c.GetId()}); err != nil {
					t.Errorf("remove %s: %v", c.GetId(), err)
				}
			}
			d.removePod(t, pod)
			if l := d.leaks(); len(l) > 0 {
				t.Fatalf("leaks after crash at %s: %v", fp, l)
			}
		})
	}
}

// startContainerNoFail starts a container from a goroutine (no t.Fatal).
func (d *daemon) startContainerNoFail(pod string, cfg *runtimeapi.PodSandboxConfig) {
	c, cancel := contextWithTimeout()
	defer cancel()
	resp, err := d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("c", "sleep", "1000"), SandboxConfig: cfg})
	if err == nil {
		_, _ = d.rt.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()})
	}
}

// A reboot: pins unmounted, every monitor and container killed, the
// runroot emptied. Pods come back NOTREADY, containers EXITED, and Stop and
// Remove release the IPs through CNI DEL with an empty netns path.
func TestRebootSimulation(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "reboot")
	pod := d.runPod(t, cfg)
	ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sleep", "1000"))
	ip := d.podIP(t, pod)
	d.kill9()
	// The reboot.
	_ = exec.Command("pkill", "-9", "-f", "conmon.*"+d.runroot).Run()
	_ = exec.Command("sh", "-c", "for p in $(grep -l '"+d.cgroup+"' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do kill -9 $p; done").Run()
	pin := "/var/run/netns/cradle-" + pod
	_ = syscall.Unmount(pin, syscall.MNT_DETACH)
	_ = os.Remove(pin)
	out, _ := exec.Command("sh", "-c", "grep '"+d.runroot+"' /proc/self/mountinfo | awk '{print $5}' | sort -r").Output()
	for _, m := range strings.Fields(string(out)) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	entries, _ := os.ReadDir(d.runroot)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(d.runroot, e.Name()))
	}
	// The veth went with the namespace; the IP is still held by IPAM.
	if _, err := os.Stat(filepath.Join(d.ipamDir, d.network, ip)); err != nil {
		t.Fatalf("IP %s should still be allocated before the restart: %v", ip, err)
	}
	d.start()
	ps, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatal(err)
	}
	if ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod is %v after reboot, want NOTREADY", ps.GetStatus().GetState())
	}
	if st := d.containerStatus(t, ctr); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container is %v after reboot, want EXITED", st.GetState())
	}
	d.removePod(t, pod)
	if _, err := os.Stat(filepath.Join(d.ipamDir, d.network, ip)); !os.IsNotExist(err) {
		t.Errorf("IP %s not released: %v", ip, err)
	}
	found := false
	for _, c := range d.cniCalls() {
		if strings.TrimSpace(c) == "DEL "+pod {
			found = true
		}
	}
	if !found {
		t.Errorf("no CNI DEL with an empty netns path: %v", d.cniCalls())
	}
}

// A corrupted record is quarantined; the daemon starts and serves.
func TestCorruptRecordQuarantined(t *testing.T) {
	d := newDaemon(t)
	pod := d.runPod(t, d.podConfig(t, "good"))
	d.stop()
	bad := filepath.Join(d.dir, "root", "records", "sandboxes", strings.Repeat("b", 64)+".json")
	if err := os.WriteFile(bad, []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	if _, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod}); err != nil {
		t.Errorf("good pod lost: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("corrupt record left in place")
	}
	q, _ := os.ReadDir(filepath.Join(d.dir, "root", "records", "quarantine"))
	if len(q) != 1 {
		t.Errorf("quarantine holds %d files, want 1", len(q))
	}
}
