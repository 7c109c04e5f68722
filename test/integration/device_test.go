package integration

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runtime.device_ownership_from_security_context: a non-root container
// owns its devices and can write to one only root could; a root container
// sees the host's owner.
func TestDeviceOwnershipFromSecurityContext(t *testing.T) {
	d := newDaemon(t, withDropIn("devices", "[runtime]\ndevice_ownership_from_security_context = true\n"))
	d.pull(t, busybox)
	// A null-like device of the test's own, root's only.
	dev := filepath.Join(t.TempDir(), "mynull")
	if err := unix.Mknod(dev, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	podCfg := d.podConfig(t, "devown")
	pod := d.runPod(t, podCfg)
	script := "echo owner=$(stat -c %u:%g /dev/mydev); echo x > /dev/mydev && echo wrote"

	user := containerConfig("user", "sh", "-c", script)
	user.Devices = []*runtimeapi.Device{{HostPath: dev, ContainerPath: "/dev/mydev", Permissions: "rw"}}
	user.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 5000}
	user.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: 6000}
	d.startContainer(t, pod, podCfg, user)
	out := logOf(t, filepath.Join(podCfg.LogDirectory, "user.log"), "owner=")
	if !strings.Contains(out, "owner=5000:6000") {
		t.Errorf("non-root container: %q, want the device owned by 5000:6000", out)
	}
	out = logOf(t, filepath.Join(podCfg.LogDirectory, "user.log"), "wrote")
	if strings.Contains(out, "denied") {
		t.Errorf("non-root container could not write its device: %q", out)
	}

	root := containerConfig("root", "sh", "-c", script)
	root.Devices = user.Devices
	d.startContainer(t, pod, podCfg, root)
	if out := logOf(t, filepath.Join(podCfg.LogDirectory, "root.log"), "wrote"); !strings.Contains(out, "owner=0:0") {
		t.Errorf("root container: %q, want the host's owner 0:0", out)
	}
}
