package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A container OOM-killed while the daemon is down is still reported as
// OOMKilled after the restart: conmon's oom file for an oci handler, the
// memory cgroup's oom_kill count for a vm handler (the shim's /tasks/oom
// event went to a dead socket).
func TestOOMWhileDaemonDown(t *testing.T) {
	handlers := map[string]string{"oci": ""}
	if _, err := os.Stat("/usr/bin/containerd-shim-runc-v2"); err == nil {
		handlers["vm"] = `[runtime.handlers.vm]
type = "vm"
path = "/usr/bin/containerd-shim-runc-v2"
runtime_path = "/usr/sbin/runc"
`
	}
	for name, conf := range handlers {
		t.Run(name, func(t *testing.T) {
			var opts []option
			if conf != "" {
				opts = append(opts, withConfig(conf), withDefaultHandler(name))
			}
			d := newDaemon(t, opts...)
			d.pull(t, busybox)
			d.pull(t, pauseImage)
			cfg := d.podConfig(t, "oomdown"+name)
			pod := d.runPod(t, cfg)
			t.Cleanup(func() { d.removePod(t, pod) })

			trigger := t.TempDir()
			marker := fmt.Sprintf("oomdown-%d-%s", os.Getpid(), name)
			c := containerConfig("hog", "sh", "-c", ": "+marker+"; while [ ! -e /trigger/go ]; do sleep 0.1; done; "+
				"x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived")
			c.Mounts = append(c.Mounts, &runtimeapi.Mount{HostPath: trigger, ContainerPath: "/trigger"})
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
			ctr := d.startContainer(t, pod, cfg, c)

			d.kill9()
			if err := os.WriteFile(filepath.Join(trigger, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			// The container's shell is gone once the kernel has killed it.
			eventually(t, 60*time.Second, func() string {
				if out, _ := exec.Command("pgrep", "-f", marker).Output(); len(strings.TrimSpace(string(out))) > 0 {
					return "container still running: " + strings.TrimSpace(string(out))
				}
				return ""
			})
			d.start()
			st := d.waitState(t, ctr, runtimeapi.ContainerState_CONTAINER_EXITED)
			if st.GetReason() != "OOMKilled" || st.GetExitCode() != 137 {
				t.Errorf("after the restart: reason %q exit %d, want OOMKilled 137", st.GetReason(), st.GetExitCode())
			}
		})
	}
}
