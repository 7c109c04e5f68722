package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The first pod end to end: pull, run, log, network, stop, remove, and
// nothing left behind.
func TestFirstPodEndToEnd(t *testing.T) {
	d := newDaemon(t)
	imageRef := d.pull(t, busybox)
	if !strings.HasPrefix(imageRef, "sha256:") {
		t.Errorf("image ref %q is not a config digest", imageRef)
	}
	podCfg := d.podConfig(t, "first")
	pod := d.runPod(t, podCfg)

	ctr := d.startContainer(t, pod, podCfg, containerConfig("echo", "sh", "-c", "echo hello-from-cradle; exec sleep 1000"))
	logFile := filepath.Join(podCfg.LogDirectory, "echo.log")
	line := regexp.MustCompile(`^(\S+) stdout F hello-from-cradle$`)
	eventually(t, 10*time.Second, func() string {
		b, err := os.ReadFile(logFile)
		if err != nil {
			return err.Error()
		}
		for _, l := range strings.Split(string(b), "\n") {
			if m := line.FindStringSubmatch(l); m != nil {
				if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
					return "bad timestamp in " + l
				}
				return ""
			}
		}
		return "no CRI log line in " + string(b)
	})
	st := d.containerStatus(t, ctr)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || st.GetImageRef() != imageRef || st.GetLogPath() != logFile {
		t.Errorf("status: state %v, image ref %q, log %q", st.GetState(), st.GetImageRef(), st.GetLogPath())
	}

	ps, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(ps.GetStatus().GetNetwork().GetIp())
	_, subnet, _ := net.ParseCIDR(d.subnet)
	if ip == nil || !subnet.Contains(ip) {
		t.Fatalf("pod IP %q is not in %s", ps.GetStatus().GetNetwork().GetIp(), d.subnet)
	}
	pin := filepath.Join("/var/run/netns", "cradle-"+pod)
	out, err := exec.Command("nsenter", "--net="+pin, "ip", "-4", "-o", "addr", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ip.String()+"/") {
		t.Fatalf("eth0 in %s does not carry %s: %v %s", pin, ip, err, out)
	}
	if _, err := os.Stat(filepath.Join(d.ipamDir, d.network, ip.String())); err != nil {
		t.Fatalf("host-local has no allocation for %s: %v", ip, err)
	}

	d.removePod(t, pod)
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("netns pin still exists: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.ipamDir, d.network, ip.String())); !os.IsNotExist(err) {
		t.Errorf("IP %s still allocated in host-local: %v", ip, err)
	}
	if leaks := d.leaks(); len(leaks) > 0 {
		t.Errorf("leaks after remove, before daemon stop: %v", leaks)
	}
}

// A RunPodSandbox retry with the same metadata gets the same sandbox.
func TestRunPodSandboxRetryGetsSameSandbox(t *testing.T) {
	d := newDaemon(t)
	cfg := d.podConfig(t, "retry")
	first := d.runPod(t, cfg)
	second := d.runPod(t, cfg)
	if first != second {
		t.Errorf("retry got %s, want %s", second, first)
	}
	d.removePod(t, first)
}

// Stop and Remove are idempotent, also for unknown IDs.
func TestStopRemoveIdempotent(t *testing.T) {
	d := newDaemon(t)
	cfg := d.podConfig(t, "idem")
	pod := d.runPod(t, cfg)
	for i := 0; i < 10; i++ {
		if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatalf("stop #%d: %v", i+1, err)
		}
	}
	d.restart()
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("stop after restart: %v", err)
	}
	ps, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil || ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("status after stop: %v %v", ps.GetStatus().GetState(), err)
	}
	for i := 0; i < 2; i++ {
		if _, err := d.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatalf("remove #%d: %v", i+1, err)
		}
	}
	unknown := strings.Repeat("f", 64)
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("stop of unknown ID: %v", err)
	}
	if _, err := d.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("remove of unknown ID: %v", err)
	}
}
