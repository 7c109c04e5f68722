package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod-wide PID namespace is held by cradle's PID holder, not by a pause
// container: its containers see each other, PID 1 is the holder, no conmon
// runs for it, it survives a daemon crash, and Stop ends it.
func TestSharedPIDNamespace(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "sharedpid")
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	pod := d.runPod(t, cfg)
	shared := func(name string, cmd ...string) *runtimeapi.ContainerConfig {
		c := containerConfig(name, cmd...)
		c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		return c
	}
	d.startContainer(t, pod, cfg, shared("sleeper", "sleep", "3601"))
	ctr := d.startContainer(t, pod, cfg, shared("main", reaperInit...))

	holders := d.holderPids()
	if len(holders) != 1 {
		t.Fatalf("want one pid holder process, got %v", holders)
	}
	holder := holders[0]
	sees := func(ctr string) {
		t.Helper()
		resp, err := d.execSync(t, ctr, 10, "sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo; cat /proc/*/cmdline | tr '\\0' ' '")
		if err != nil || resp.GetExitCode() != 0 {
			t.Fatalf("exec: %v %q", err, resp.GetStderr())
		}
		out := string(resp.GetStdout())
		if first, _, _ := strings.Cut(out, "\n"); strings.TrimSpace(first) != "cradle-pod-init "+pod {
			t.Errorf("PID 1 in the pod is %q, want the pid holder", first)
		}
		if !strings.Contains(out, "sleep 3601") {
			t.Errorf("a container does not see its neighbour's process: %q", out)
		}
		// Nothing of the host through PID 1: an empty root, not dumpable.
		resp, _ = d.execSync(t, ctr, 10, "ls", "/proc/1/root/")
		if resp.GetExitCode() == 0 && strings.TrimSpace(string(resp.GetStdout())) != "" {
			t.Errorf("/proc/1/root shows %q", resp.GetStdout())
		}
	}
	sees(ctr)
	// The holder is in the pod's network namespace, and in no container.
	for _, ns := range []string{"net", "pid"} {
		h, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", holder, ns))
		c, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", d.containerStatusPid(t, ctr), ns))
		if h == "" || h != c {
			t.Errorf("%s namespace: holder %q, container %q", ns, h, c)
		}
	}
	// In a cgroup of its own below the pod's, and in no container's.
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", holder)); !strings.Contains(string(b), ":"+d.cgroup+"/cradle-"+pod+"\n") {
		t.Errorf("pid holder is not in the pod's cgroup %s: %s", d.cgroup, b)
	}
	// The small binary next to the daemon's, not the daemon's own.
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", holder)); filepath.Base(exe) != "cradle-pod-init" {
		t.Errorf("pid holder runs %s", exe)
	}
	// It survives what would end a process by default, and reaps orphans.
	// Pending standard signals are taken lowest first, so once the orphan
	// (SIGCHLD) is reaped the holder has had every signal sent before.
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM} {
		if err := syscall.Kill(holder, sig); err != nil {
			t.Fatal(err)
		}
	}
	children := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", holder, holder))
		return strings.TrimSpace(string(b))
	}
	if resp, err := d.execSync(t, ctr, 10, "sh", "-c", "sleep 2 &"); err != nil || resp.GetExitCode() != 0 {
		t.Fatalf("exec: %v", err)
	}
	if children() == "" {
		t.Error("an orphan of the pod was not reparented to the pid holder")
	}
	eventually(t, 20*time.Second, func() string {
		if c := children(); c != "" {
			return "the pid holder has not reaped " + c
		}
		return ""
	})
	if got := d.holderPids(); len(got) != 1 || got[0] != holder {
		t.Fatalf("pid holder after signals: %v, want %d", got, holder)
	}
	if n := conmons(d); n != 2 {
		t.Errorf("%d conmon processes for two containers: the infra has one", n)
	}

	d.kill9()
	d.start()
	if got := d.holderPids(); len(got) != 1 || got[0] != holder {
		t.Fatalf("pid holder after a daemon crash: %v, want %d", got, holder)
	}
	st, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil || st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod after restart: %v %v", err, st.GetStatus().GetState())
	}
	// A container created after the restart joins the same namespace.
	sees(d.startContainer(t, pod, cfg, shared("late", reaperInit...)))

	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if got := d.holderPids(); len(got) != 0 {
		t.Errorf("pid holder after StopPodSandbox: %v", got)
	}
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Errorf("second StopPodSandbox: %v", err)
	}
	d.removePod(t, pod)
	if _, err := os.Stat(filepath.Join(d.runroot, "ns", pod)); !os.IsNotExist(err) {
		t.Errorf("pin directory of the pod: %v", err)
	}
}

// pausedHandler is a handler that runs a pause container for every pod.
const pausedHandler = `[runtime.handlers.paused]
type = "oci"
path = "/usr/sbin/runc"
infra_container = "always"
`

// With infra_container = "always", a shared PID namespace is still held by
// a pause container.
func TestSharedPIDPauseContainer(t *testing.T) {
	d := newDaemon(t, withConfig(pausedHandler))
	d.pull(t, busybox)
	cfg := d.podConfig(t, "sharedpid-pause")
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "paused"})
	if err != nil {
		d.dumpLog()
		t.Fatal(err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() { d.removePod(t, pod) })
	c := containerConfig("ps", "sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo; echo end")
	c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	d.startContainer(t, pod, cfg, c)
	out := logOf(t, filepath.Join(cfg.LogDirectory, "ps.log"), "end")
	if !strings.Contains(out, "pause") && !strings.Contains(out, "catatonit") {
		t.Errorf("PID 1 in the pod is not the pause process: %q", out)
	}
	if got := d.holderPids(); len(got) != 0 {
		t.Errorf("a pid holder runs next to the pause container: %v", got)
	}
}

func conmons(d *daemon) int {
	out, _ := exec.Command("pgrep", "-f", "conmon.*"+d.runroot).Output()
	return len(strings.Fields(string(out)))
}

func (d *daemon) containerStatusPid(t *testing.T, id string) int {
	t.Helper()
	resp, err := d.rt.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.Pid <= 0 {
		t.Fatalf("no pid in the verbose status: %v", err)
	}
	return info.Pid
}

// A PID holder that dies takes the pod's processes with it, and the pod
// becomes NOTREADY, as with an exited pause container; also when the
// holder outlived a daemon restart.
func TestPIDHolderDeathMarksPodNotReady(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			d := newDaemon(t)
			d.pull(t, busybox)
			cfg := d.podConfig(t, "holderdeath")
			cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
			pod := d.runPod(t, cfg)
			c := containerConfig("main", reaperInit...)
			c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
			ctr := d.startContainer(t, pod, cfg, c)
			if restart {
				d.kill9()
				d.start()
			}
			holders := d.holderPids()
			if len(holders) != 1 {
				t.Fatalf("pid holders: %v", holders)
			}
			if err := syscall.Kill(holders[0], syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, func() string {
				st, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
				if err != nil {
					return err.Error()
				}
				if s := st.GetStatus().GetState(); s != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
					return "pod is " + s.String()
				}
				if s := d.containerStatus(t, ctr).GetState(); s != runtimeapi.ContainerState_CONTAINER_EXITED {
					return "container is " + s.String()
				}
				return ""
			})
			d.removePod(t, pod)
		})
	}
}
