package integration

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A handler's monitor_env reaches its monitor: conmon runs with it.
func TestHandlerMonitorEnv(t *testing.T) {
	d := newDaemon(t, withConfig(`[runtime.handlers.envrunc]
type = "oci"
path = "/usr/sbin/runc"
monitor_env = ["CRADLE_TEST_MONITOR=42"]
`))
	d.pull(t, busybox)
	cfg := d.podConfig(t, "menv")
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "envrunc"})
	if err != nil {
		t.Fatal(err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() { d.removePod(t, pod) })
	ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sleep", "1000"))
	var env []byte
	for _, p := range procs() {
		if p.comm == "conmon" && strings.Contains(p.cmdline, "-c "+ctr) {
			if env, err = os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if env == nil {
		t.Fatalf("no conmon for container %s", ctr)
	}
	if !bytes.Contains(env, []byte("\x00CRADLE_TEST_MONITOR=42\x00")) && !bytes.HasPrefix(env, []byte("CRADLE_TEST_MONITOR=42\x00")) {
		t.Errorf("conmon's environment lacks CRADLE_TEST_MONITOR=42")
	}
}
