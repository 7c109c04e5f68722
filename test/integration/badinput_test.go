package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func wantCode(t *testing.T, what string, err error, code codes.Code, field string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Errorf("%s: got %v (%v), want %v", what, st.Code(), err, code)
		return
	}
	if field != "" && !strings.Contains(st.Message(), field) {
		t.Errorf("%s: message %q does not name %q", what, st.Message(), field)
	}
}

func TestBadInputGetsClearStatus(t *testing.T) {
	d := newDaemon(t)
	c := ctx(t)

	_, err := d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{})
	wantCode(t, "RunPodSandbox nil config", err, codes.InvalidArgument, "config")
	noName := d.podConfig(t, "x")
	noName.Metadata.Name = ""
	_, err = d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: noName})
	wantCode(t, "RunPodSandbox empty name", err, codes.InvalidArgument, "config.metadata.name")
	_, err = d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: d.podConfig(t, "x"), RuntimeHandler: "nope"})
	wantCode(t, "RunPodSandbox unknown handler", err, codes.InvalidArgument, "runtime_handler")
	bad := d.podConfig(t, "x")
	bad.Linux.Sysctls = map[string]string{"vm.swappiness": "1"}
	_, err = d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: bad})
	wantCode(t, "RunPodSandbox non-namespaced sysctl", err, codes.InvalidArgument, "vm.swappiness")

	relLogs := d.podConfig(t, "x")
	relLogs.LogDirectory = "relative/logs"
	_, err = d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: relLogs})
	wantCode(t, "RunPodSandbox relative log directory", err, codes.InvalidArgument, "config.log_directory")

	_, err = d.rt.PodSandboxStatus(c, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "deadbeef"})
	wantCode(t, "PodSandboxStatus unknown", err, codes.NotFound, "")
	_, err = d.rt.ContainerStatus(c, &runtimeapi.ContainerStatusRequest{ContainerId: "deadbeef"})
	wantCode(t, "ContainerStatus unknown", err, codes.NotFound, "container_id")
	_, err = d.rt.StartContainer(c, &runtimeapi.StartContainerRequest{})
	wantCode(t, "StartContainer empty ID", err, codes.InvalidArgument, "container_id")
	_, err = d.img.PullImage(c, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "UPPER/Case::bad"}})
	wantCode(t, "PullImage invalid reference", err, codes.InvalidArgument, "")
	_, err = d.img.PullImage(c, &runtimeapi.PullImageRequest{})
	wantCode(t, "PullImage empty", err, codes.InvalidArgument, "image")
	st, err := d.img.ImageStatus(c, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "registry.k8s.io/not-here:1"}})
	if err != nil || st.GetImage() != nil {
		t.Errorf("ImageStatus of an absent image: %v, %v; want an empty answer", st.GetImage(), err)
	}
	_, err = d.rt.ExecSync(c, &runtimeapi.ExecSyncRequest{ContainerId: "x", Cmd: []string{"true"}})
	if status.Code(err) == codes.OK {
		t.Error("ExecSync returned success for an unknown container")
	}

	podCfg := d.podConfig(t, "bad")
	pod := d.runPod(t, podCfg)
	defer d.removePod(t, pod)

	_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: nil})
	wantCode(t, "CreateContainer nil config", err, codes.InvalidArgument, "config")
	notPulled := containerConfig("np", "true")
	notPulled.Image.Image = "registry.k8s.io/not-pulled:1"
	_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: notPulled})
	wantCode(t, "CreateContainer image not pulled", err, codes.NotFound, "config.image.image")

	d.pull(t, busybox)
	rel := containerConfig("rel", "true")
	rel.Mounts = []*runtimeapi.Mount{{ContainerPath: "relative/path", HostPath: "/tmp"}}
	_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: rel})
	wantCode(t, "CreateContainer relative mount", err, codes.InvalidArgument, "mounts[0].container_path")
	missing := containerConfig("missing", "true")
	missing.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/nonexistent/cradle/path"}}
	_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: missing})
	wantCode(t, "CreateContainer missing host path", err, codes.InvalidArgument, "mounts[0].host_path")
	capc := containerConfig("cap", "true")
	capc.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"CAP_MADE_UP"}}
	_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: capc})
	wantCode(t, "CreateContainer unknown capability", err, codes.InvalidArgument, "CAP_MADE_UP")
	// A log path out of the pod's log directory: refused, and no file
	// appears where it pointed.
	outside := filepath.Join(t.TempDir(), "escaped.log")
	for _, lp := range []string{"../../../../../../../.." + outside, outside} {
		esc := containerConfig("esc", "true")
		esc.LogPath = lp
		_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: esc, SandboxConfig: podCfg})
		wantCode(t, "CreateContainer log_path "+lp, err, codes.InvalidArgument, "config.log_path")
		if _, err := os.Stat(outside); err == nil {
			t.Errorf("log_path %q created %s", lp, outside)
		}
	}

	// A runtime failure (no such binary) fails create and leaves nothing.
	_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("nobin", "/no/such/binary")})
	if err == nil {
		t.Error("CreateContainer with a missing binary succeeded")
	}
	ok := containerConfig("dup", "sleep", "1000")
	resp, err := d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: ok})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: ok})
	wantCode(t, "CreateContainer duplicate name", err, codes.AlreadyExists, "config.metadata.name")

	list, err := d.rt.ListContainers(c, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.GetContainers()) != 1 || list.GetContainers()[0].GetId() != resp.GetContainerId() {
		t.Errorf("after failed creates, containers = %v (%v); want only %s", list.GetContainers(), err, resp.GetContainerId())
	}
	if got := dirEntries(filepath.Join(d.runroot, "containers")); len(got) != 1 {
		t.Errorf("bundles left after failed creates: %v", got)
	}
	if got := dirEntries(filepath.Join(d.runroot, "runtime", "runc")); len(got) > 1 {
		t.Errorf("runtime state left after failed creates: %v", got)
	}
	if _, err := d.rt.RemoveContainer(c, &runtimeapi.RemoveContainerRequest{ContainerId: resp.GetContainerId()}); err != nil {
		t.Fatal(err)
	}
}

// A RunPodSandbox that fails half way (a sysctl the kernel rejects, after
// the namespaces exist) leaves no pins, files or records.
func TestFailedRunPodSandboxLeavesNothing(t *testing.T) {
	d := newDaemon(t)
	cfg := d.podConfig(t, "fail")
	cfg.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "not-a-number"}
	_, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err == nil {
		t.Fatal("RunPodSandbox with an invalid sysctl value succeeded")
	}
	list, err := d.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.GetItems()) != 0 {
		t.Errorf("sandboxes after failure: %v %v", list.GetItems(), err)
	}
	if got := dirEntries(filepath.Join(d.runroot, "pods")); len(got) != 0 {
		t.Errorf("pod dirs left: %v", got)
	}
	if got := dirEntries(filepath.Join(d.dir, "root", "records", "sandboxes")); len(got) != 0 {
		t.Errorf("records left: %v", got)
	}
	if leaks := d.leaks(); len(leaks) > 0 {
		t.Errorf("leaks: %v", leaks)
	}
	_ = os.Remove
}
