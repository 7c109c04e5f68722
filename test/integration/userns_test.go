package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func newRuncHandler(t *testing.T) string {
	if os.Getenv("CRADLE_TEST_RUNC") == "" {
		t.Skip("CRADLE_TEST_RUNC is not set (hack/install-runc.sh builds it; make test sets it)")
	}
	return "runc-new"
}

// A pod-wide user namespace: every container of the pod runs in the pinned
// user namespace with the requested mapping, and the pod's network and IPC
// namespaces belong to it.
func TestPodUserNamespace(t *testing.T) {
	handler := newRuncHandler(t)
	d := newDaemon(t)
	d.pull(t, busybox)
	d.pull(t, pauseImage)
	st, err := d.rt.Status(ctx(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	advertised := false
	for _, h := range st.GetRuntimeHandlers() {
		if h.GetName() == handler && h.GetFeatures().GetUserNamespaces() {
			advertised = true
		}
	}
	if !advertised {
		t.Errorf("handler %s does not advertise user namespaces", handler)
	}
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	cfg := d.podConfig(t, "userns")
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{
		Pid:           runtimeapi.NamespaceMode_POD,
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m},
	}
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		d.dumpLog()
		t.Fatal(err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() { d.removePod(t, pod) })
	c := containerConfig("uidmap", "sh", "-c", "cat /proc/self/uid_map; readlink /proc/self/ns/user; echo end")
	c.Linux.SecurityContext.NamespaceOptions = cfg.Linux.SecurityContext.NamespaceOptions
	d.startContainer(t, pod, cfg, c)
	out := logOf(t, filepath.Join(cfg.LogDirectory, "uidmap.log"), "end")
	if f := strings.Fields(out); len(f) < 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Errorf("uid_map in the container: %q", out)
	}
	pin, _ := os.Readlink("/proc/self/ns/user")
	if strings.Contains(out, pin) {
		t.Errorf("container is in the host's user namespace: %q", out)
	}

	for name, bad := range map[string]*runtimeapi.UserNamespace{
		"two mappings":    {Mode: runtimeapi.NamespaceMode_POD, Uids: append(m, m[0]), Gids: m},
		"root not mapped": {Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 1000, Length: 10}}, Gids: m},
		"container mode":  {Mode: runtimeapi.NamespaceMode_CONTAINER},
		"target mode":     {Mode: runtimeapi.NamespaceMode_TARGET},
	} {
		bc := d.podConfig(t, "bad")
		bc.Linux.SecurityContext.NamespaceOptions.UsernsOptions = bad
		_, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: bc, RuntimeHandler: handler})
		wantCode(t, name, err, codes.InvalidArgument, "userns_options")
	}
}
