package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CDI devices from runtime.cdi_spec_dirs reach the container: the device
// node, the environment and the mount of the spec, for cdi_devices and for
// the cdi.k8s.io/ annotations; an unknown device is InvalidArgument naming
// it, and leaves nothing behind.
func TestCDIDevices(t *testing.T) {
	specDir, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "hello"), []byte("from-cdi-mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, withDropIn("cdi", fmt.Sprintf("[runtime]\ncdi_spec_dirs = [%q]\n", specDir)))
	d.pull(t, busybox)
	// Written after the daemon started, as a DRA driver does.
	spec := fmt.Sprintf(`cdiVersion: "0.6.0"
kind: cradle.test/gpu
devices:
- name: gpu0
  containerEdits:
    env: ["GPU=0"]
    deviceNodes:
    - path: /dev/cdi-gpu0
      hostPath: /dev/null
      permissions: rw
    mounts:
    - hostPath: %s
      containerPath: /cdi-data
      options: ["ro", "bind"]
- name: gpu1
  containerEdits:
    env: ["GPU1=yes"]
containerEdits:
  env: ["VENDOR=cradle"]
`, data)
	if err := os.WriteFile(filepath.Join(specDir, "gpu.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	podCfg := d.podConfig(t, "cdi")
	pod := d.runPod(t, podCfg)

	cfg := containerConfig("cdi", "sh", "-c",
		"echo env=$GPU,$GPU1,$VENDOR; cat /cdi-data/hello; echo x > /dev/cdi-gpu0 && echo dev=$(stat -c %t:%T /dev/cdi-gpu0)")
	cfg.CDIDevices = []*runtimeapi.CDIDevice{{Name: "cradle.test/gpu=gpu0"}}
	cfg.Annotations = map[string]string{"cdi.k8s.io/test-plugin": "cradle.test/gpu=gpu1"}
	d.startContainer(t, pod, podCfg, cfg)
	out := logOf(t, filepath.Join(podCfg.LogDirectory, "cdi.log"), "dev=")
	for _, want := range []string{"env=0,yes,cradle", "from-cdi-mount", "dev=1:3"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output %q lacks %q", out, want)
		}
	}

	bad := containerConfig("cdi-bad", "true")
	bad.CDIDevices = []*runtimeapi.CDIDevice{{Name: "cradle.test/gpu=gpu0"}, {Name: "cradle.test/gpu=gpu9"}}
	_, err := d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: bad, SandboxConfig: podCfg})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "cdi_devices") || !strings.Contains(err.Error(), "cradle.test/gpu=gpu9") {
		t.Errorf("unknown CDI device: %v; want InvalidArgument naming cdi_devices and the device", err)
	}
	// Nothing of it is left: the name is free again and only one
	// container is listed.
	bad.CDIDevices = bad.CDIDevices[:1]
	d.startContainer(t, pod, podCfg, bad)
	list, err := d.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
	if err != nil || len(list.GetContainers()) != 2 {
		t.Errorf("ListContainers: %d containers, %v; want 2", len(list.GetContainers()), err)
	}
}
