// Package kubeletconf is the standalone kubelet that the integration tests
// and the benchmark run against a runtime's socket: the configuration that
// works on a cgroup v1, swap-on, systemd-less host, and the cgroup root it
// wants to find.
package kubeletconf

import (
	"fmt"
	"os"
	"path/filepath"
)

// Controllers are the v1 hierarchies the kubelet wants its cgroup root in.
var Controllers = []string{"systemd", "cpuset", "pids", "cpuacct", "cpu", "memory", "blkio", "devices", "freezer"}

// Options are what differs between kubelets.
type Options struct {
	StaticPodPath string
	Socket        string // the runtime's CRI socket, a path
	CgroupRoot    string
	PodLogsDir    string
	ReadOnlyPort  int // on 127.0.0.1
	Port          int
	HealthzPort   int
	Extra         string // further KubeletConfiguration lines
}

// Config is the KubeletConfiguration for o: static pods only, anonymous
// read access on 127.0.0.1, no eviction or node allocatable enforcement.
func Config(o Options) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %s
fileCheckFrequency: 1s
syncFrequency: 5s
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
failSwapOn: false
failCgroupV1: false
enforceNodeAllocatable: []
localStorageCapacityIsolation: false
evictionHard: {}
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
address: 127.0.0.1
readOnlyPort: %d
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
podLogsDir: %s
resolvConf: /etc/resolv.conf
%s
`, o.StaticPodPath, o.Socket, o.Socket, o.CgroupRoot, o.ReadOnlyPort, o.Port, o.HealthzPort, o.PodLogsDir, o.Extra)
}

// MakeCgroupRoot creates root in every hierarchy the kubelet checks. A new
// cpuset is empty, so it gets its parent's CPUs and memory nodes.
func MakeCgroupRoot(root string) error {
	for _, c := range Controllers {
		p := filepath.Join("/sys/fs/cgroup", c, root)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("kubelet cgroup root: %w", err)
		}
		if c == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
				_ = os.WriteFile(filepath.Join(p, f), b, 0o644)
			}
		}
	}
	return nil
}
