package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// microVMShim is bin/cradle-shim-vm next to the cradle under test, with
// bin/cradle-vm-agent beside it; the test is skipped when qemu or a guest
// kernel is missing (hack/install-vm-deps.sh installs them).
func microVMShim(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("no qemu-system-x86_64 (hack/install-vm-deps.sh)")
	}
	if k, _ := filepath.Glob("/lib/modules/*/kernel/fs/9p/9p.ko*"); len(k) == 0 {
		t.Skip("no guest kernel with 9p modules (linux-image-amd64; hack/install-vm-deps.sh)")
	}
	shim := filepath.Join(filepath.Dir(cradleBin(t)), "cradle-shim-vm")
	for _, b := range []string{shim, filepath.Join(filepath.Dir(shim), "cradle-vm-agent")} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%v: make build builds it", err)
		}
	}
	return shim
}

// microVMDaemon runs a daemon with a microvm handler whose shim gets
// CRADLE_VM_ACCEL=accel.
func microVMDaemon(t *testing.T, accel string) *daemon {
	shim := microVMShim(t)
	d := newDaemon(t, withConfig(fmt.Sprintf(`[runtime.handlers.microvm]
type = "vm"
path = %q
monitor_env = ["CRADLE_VM_ACCEL=%s"]
`, shim, accel)))
	d.pull(t, pauseImage)
	d.pull(t, busybox)
	return d
}

func httpGet(url string) (string, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func (d *daemon) qemuPids() string {
	out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+d.runroot).Output()
	return strings.TrimSpace(string(out))
}

// TestMicroVMPod runs a pod on cradle-shim-vm: the pod is a qemu VM
// booted in the pod's netns, whose busybox httpd container the host
// reaches at the pod IP over bridge, veth, tap and guest; the container
// runs the guest's kernel; exec and logs work; the pod survives a kill
// -9 of cradle; removing it leaves no qemu, shim, TAP, filter, mount or
// state (the harness's leak check).
func TestMicroVMPod(t *testing.T) {
	d := microVMDaemon(t, "tcg") // nested KVM hangs on this host; auto would probe it once
	cfg := d.podConfig(t, "microvm")
	// The VM is sized from the pod's limits: 256 MiB plus 128 for the guest.
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20}
	t0 := time.Now()
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "microvm"})
	if err != nil {
		d.dumpLog()
		t.Fatalf("RunPodSandbox on the microvm handler: %v", err)
	}
	pod := resp.GetPodSandboxId()
	tPod := time.Since(t0)
	t.Cleanup(func() {
		if d.cmd != nil {
			d.removePod(t, pod)
		}
	})
	t1 := time.Now()
	web := d.startContainer(t, pod, cfg, containerConfig("web", "sh", "-c",
		"mkdir -p /www && echo hello from the microvm > /www/index.html && echo httpd serving && exec httpd -f -p 8080 -h /www"))
	tCtr := time.Since(t1)
	logOf(t, filepath.Join(cfg.LogDirectory, "web.log"), "httpd serving")
	tLog := time.Since(t1)
	t.Logf("RunPodSandbox (VM boot, agent, network) %s; CreateContainer+StartContainer %s; first log line %s after CreateContainer",
		tPod.Round(time.Millisecond), tCtr.Round(time.Millisecond), tLog.Round(time.Millisecond))
	if b, err := os.ReadFile(d.logPath); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "shim: vm booted") || strings.Contains(l, "in the VM in") {
				t.Logf("shim: %s", l)
			}
		}
	}

	url := "http://" + d.podIP(t, pod) + ":8080/"
	var body string
	eventually(t, 30*time.Second, func() string {
		if body, err = httpGet(url); err != nil {
			return "GET " + url + ": " + err.Error()
		}
		return ""
	})
	if strings.TrimSpace(body) != "hello from the microvm" {
		t.Fatalf("GET %s: %q", url, body)
	}
	t.Logf("GET %s from the host: %q (%s after CreateContainer)", url, strings.TrimSpace(body), time.Since(t1).Round(time.Millisecond))

	var u unix.Utsname
	_ = unix.Uname(&u)
	host := unix.ByteSliceToString(u.Release[:])
	r, err := d.execSync(t, web, 30, "uname", "-r")
	guest := strings.TrimSpace(string(r.GetStdout()))
	if err != nil || r.GetExitCode() != 0 || guest == "" || guest == host {
		t.Fatalf("uname -r in the container: %v exit %d %q (host %q)", err, r.GetExitCode(), guest, host)
	}
	t.Logf("uname -r: container %s, host %s", guest, host)
	// A second container shares the guest's network: it reaches the
	// first at localhost, and its exit comes back as an event.
	probe := d.startContainer(t, pod, cfg, containerConfig("probe", "sh", "-c", "wget -q -O - http://127.0.0.1:8080/; exit 4"))
	if got := logOf(t, filepath.Join(cfg.LogDirectory, "probe.log"), "hello from the microvm"); got == "" {
		t.Fatal("no probe output")
	}
	eventually(t, 30*time.Second, func() string {
		if st := d.containerStatus(t, probe); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 4 {
			return fmt.Sprintf("probe container: %s exit %d, want EXITED 4", st.GetState(), st.GetExitCode())
		}
		return ""
	})
	d.waitLog(t, `container exited" runtime=microvm container=`+probe+` exit_code=4 oom_killed=false via=event`)
	r, err = d.execSync(t, web, 30, "sh", "-c", "grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo")
	var memKiB, cpus int
	if _, serr := fmt.Sscanf(string(r.GetStdout()), "MemTotal: %d kB\n%d", &memKiB, &cpus); err != nil || serr != nil ||
		memKiB < 300<<10 || memKiB > 384<<10 || cpus != 1 {
		t.Errorf("guest size: %v %v %q: want 300-384 MiB and 1 vCPU", err, serr, r.GetStdout())
	}
	t.Logf("guest: MemTotal %d kB, %d vCPU", memKiB, cpus)
	r, err = d.execSync(t, web, 30, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil || r.GetExitCode() != 3 || strings.TrimSpace(string(r.GetStdout())) != "out" || strings.TrimSpace(string(r.GetStderr())) != "err" {
		t.Errorf("ExecSync: %v, exit %d, stdout %q, stderr %q", err, r.GetExitCode(), r.GetStdout(), r.GetStderr())
	}

	qemu := d.qemuPids()
	d.kill9()
	d.start()
	if st := d.containerStatus(t, web); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after kill -9 of cradle: %s", st.GetState())
	}
	if got := d.qemuPids(); got != qemu || got == "" {
		t.Errorf("qemu after the restart: %q, before: %q", got, qemu)
	}
	if body, err := httpGet(url); err != nil || strings.TrimSpace(body) != "hello from the microvm" {
		t.Errorf("GET %s after the restart: %v %q", url, err, body)
	}
	if r, err := d.execSync(t, web, 30, "echo", "still"); err != nil || strings.TrimSpace(string(r.GetStdout())) != "still" {
		t.Errorf("exec after the restart: %v %q", err, r.GetStdout())
	}

	if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: web, Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	if st := d.containerStatus(t, web); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("stopped container: %s exit %d", st.GetState(), st.GetExitCode())
	}
	d.removePod(t, pod)
	if got := d.qemuPids(); got != "" {
		t.Errorf("qemu left after RemovePodSandbox: %s", got)
	}
}

// TestMicroVMShimKilled kills a pod's cradle-shim-vm with SIGKILL: its
// qemu goes with it, cradle records the container's exit, and removing
// the pod (through the shim's delete) leaves nothing.
func TestMicroVMShimKilled(t *testing.T) {
	d := microVMDaemon(t, "tcg") // nested KVM hangs on this host; auto would probe it once
	cfg := d.podConfig(t, "microvmkill")
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "microvm"})
	if err != nil {
		d.dumpLog()
		t.Fatalf("RunPodSandbox on the microvm handler: %v", err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() {
		if d.cmd != nil {
			d.removePod(t, pod)
		}
	})
	c := d.startContainer(t, pod, cfg, containerConfig("c", "sh", "-c", "echo up; exec sleep 1000"))
	logOf(t, filepath.Join(cfg.LogDirectory, "c.log"), "up")
	out, _ := exec.Command("pgrep", "-f", "cradle-shim-vm.*"+d.runroot).Output()
	shims := strings.Fields(string(out))
	if len(shims) != 1 || d.qemuPids() == "" {
		t.Fatalf("shims %v, qemu %q: want one of each", shims, d.qemuPids())
	}
	if err := exec.Command("kill", "-9", shims[0]).Run(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() string {
		if q := d.qemuPids(); q != "" {
			return "qemu still runs: " + q
		}
		if st := d.containerStatus(t, c); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
			return "container " + st.GetState().String()
		}
		return ""
	})
	d.removePod(t, pod)
}

// TestMicroVMBadOption: a shim option the handler sets wrong fails the
// pod's start with a message that names it, and leaves nothing.
func TestMicroVMBadOption(t *testing.T) {
	d := microVMDaemon(t, "hvf")
	_, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: d.podConfig(t, "microvmbad"), RuntimeHandler: "microvm"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CRADLE_VM_ACCEL") {
		t.Fatalf("RunPodSandbox with CRADLE_VM_ACCEL=hvf: %v, want FailedPrecondition naming it", err)
	}
	t.Logf("RunPodSandbox: %v", err)
}
