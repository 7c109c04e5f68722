package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var podSeq atomic.Int64

// podConfig is a minimal pod as the kubelet would send it.
func (d *daemon) podConfig(t *testing.T, name string) *runtimeapi.PodSandboxConfig {
	n := podSeq.Add(1)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: name, Namespace: "itest", Uid: fmt.Sprintf("uid-%s-%d-%d", name, os.Getpid(), n),
		},
		Hostname:     name,
		LogDirectory: filepath.Join(t.TempDir(), "logs"),
		Labels:       map[string]string{"suite": "itest", "pod": name},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: d.cgroup,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

func containerConfig(name string, cmd ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busybox},
		Command:  cmd,
		LogPath:  name + ".log",
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

func (d *daemon) pull(t *testing.T, ref string) string {
	t.Helper()
	resp, err := d.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		d.dumpLog()
		t.Fatalf("pull %s: %v", ref, err)
	}
	return resp.GetImageRef()
}

func (d *daemon) runPod(t *testing.T, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		d.dumpLog()
		t.Fatalf("RunPodSandbox: %v", err)
	}
	id := resp.GetPodSandboxId()
	// Even when the test fails half way, the daemon releases the pod, so
	// the leak check judges the daemon and not the test's early exit.
	t.Cleanup(func() {
		if d.cmd != nil {
			d.removePod(t, id)
		}
	})
	return id
}

func (d *daemon) removePod(t *testing.T, id string) {
	t.Helper()
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("StopPodSandbox: %v", err)
	}
	if _, err := d.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("RemovePodSandbox: %v", err)
	}
}

func (d *daemon) startContainer(t *testing.T, pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	resp, err := d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	if err != nil {
		d.dumpLog()
		t.Fatalf("CreateContainer: %v", err)
	}
	id := resp.GetContainerId()
	if _, err := d.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		d.dumpLog()
		t.Fatalf("StartContainer: %v", err)
	}
	return id
}

func (d *daemon) containerStatus(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := d.rt.ContainerStatus(ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus: %v", err)
	}
	return resp.GetStatus()
}

// eventually polls fn until it returns "" or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, fn func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := fn()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits for the daemon to log a line containing want: the event a
// test synchronises on, rather than a sleep.
func (d *daemon) waitLog(t *testing.T, want string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		if b, _ := os.ReadFile(d.logPath); strings.Contains(string(b), want) {
			return ""
		}
		return "no daemon log line " + want
	})
}

// dirEntries lists names in dir ("" when missing).
func dirEntries(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// logOf waits until a container's CRI log holds want and returns the
// messages (without the CRI prefix), joined by newlines.
func logOf(t *testing.T, path, want string) string {
	t.Helper()
	var text string
	eventually(t, 15*time.Second, func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			return err.Error()
		}
		var msgs []string
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if parts := strings.SplitN(l, " ", 4); len(parts) == 4 {
				msgs = append(msgs, parts[3])
			}
		}
		text = strings.Join(msgs, "\n")
		if !strings.Contains(text, want) {
			return "log " + path + " lacks " + want + ": " + text
		}
		return ""
	})
	return text
}

// runLogged runs a one-shot container in the pod and returns its output.
func (d *daemon) runLogged(t *testing.T, pod string, podCfg *runtimeapi.PodSandboxConfig, name, want string, cmd ...string) string {
	t.Helper()
	d.startContainer(t, pod, podCfg, containerConfig(name, cmd...))
	return logOf(t, filepath.Join(podCfg.LogDirectory, name+".log"), want)
}

func (d *daemon) podIP(t *testing.T, pod string) string {
	t.Helper()
	ps, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatal(err)
	}
	return ps.GetStatus().GetNetwork().GetIp()
}

func contextWithTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// infraID is the ID of the pod's infra container (or, for a vm handler,
// its sandbox task), from the verbose PodSandboxStatus.
func (d *daemon) infraID(t *testing.T, pod string) string {
	t.Helper()
	resp, err := d.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		InfraID string `json:"infraId"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.InfraID == "" {
		t.Fatalf("no infra container or sandbox task in %q: %v", resp.GetInfo()["info"], err)
	}
	return info.InfraID
}
