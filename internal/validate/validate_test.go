package validate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cradle-runtime/cradle/internal/validate"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func goodPod() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web-0", Namespace: "default", Uid: "0b6b1b1e-uid"},
		Hostname:     "web-0",
		LogDirectory: "/var/log/pods/default_web-0_uid",
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}},
		PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 53, Protocol: runtimeapi.Protocol_UDP}},
		Labels:       map[string]string{"io.kubernetes.pod.name": "web-0"},
		Annotations:  map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/burstable/pod0b6b1b1e",
			Resources:    &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuQuota: -1, CpuPeriod: 100000},
		},
	}
}

func goodContainer() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: "nginx"},
		Image:      &runtimeapi.ImageSpec{Image: "nginx:1"},
		Command:    []string{"/bin/sh", "-c"},
		Args:       []string{"echo hi"},
		Envs:       []*runtimeapi.KeyValue{{Key: "A", Value: []byte("multi\nline")}},
		WorkingDir: "/srv",
		LogPath:    "nginx/0.log",
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/data", HostPath: "/var/lib/kubelet/pods/uid/volumes/data"},
			{ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: "busybox"}, ImageSubPath: "bin"},
		},
		Devices: []*runtimeapi.Device{{ContainerPath: "/dev/fuse", HostPath: "/dev/fuse", Permissions: "rwm"}},
		Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20,
			MemorySwapLimitInBytes: 64 << 20, OomScoreAdj: 999, CpusetCpus: "0-1", CpusetMems: "0",
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}},
		}},
	}
}

// testCase edits a good config; field is what the refusal must name, ""
// for a config that is accepted.
type testCase[T proto.Message] struct {
	name  string
	edit  func(T)
	field string
}

type (
	podCase = testCase[*runtimeapi.PodSandboxConfig]
	ctrCase = testCase[*runtimeapi.ContainerConfig]
)

func res(c *runtimeapi.ContainerConfig) *runtimeapi.LinuxContainerResources {
	return c.Linux.Resources
}

// PodCases and ContainerCases are the refusals, one or more per field
// class; the fuzz targets start from them.
var PodCases = []podCase{
	{"accepted", func(*runtimeapi.PodSandboxConfig) {}, ""},
	{"no metadata", func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }, "config.metadata"},
	{"empty name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }, "config.metadata.name"},
	{"name with a slash", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "../../etc" }, "config.metadata.name"},
	{"dot-dot name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = ".." }, "config.metadata.namespace"},
	{"name with NUL", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "a\x00b" }, "config.metadata.uid"},
	{"long name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = strings.Repeat("a", 254) }, "config.metadata.name"},
	{"hostname of 64 bytes", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = strings.Repeat("h", 64) }, "config.hostname"},
	{"hostname of 63 bytes", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = strings.Repeat("h", 63) }, ""},
	{"hostname with a newline", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "a\n1.2.3.4 evil" }, "config.hostname"},
	{"relative log directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "logs" }, "config.log_directory"},
	{"log directory with ..", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/../../etc" }, "config.log_directory"},
	{"4 nameservers", func(c *runtimeapi.PodSandboxConfig) {
		c.DnsConfig.Servers = []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"}
	}, "config.dns_config.servers"},
	{"nameserver not an IP", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Servers = []string{"1.1.1.1\nnameserver 6.6.6.6"} }, "config.dns_config.servers[0]"},
	{"33 searches", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Searches = make([]string, 33) }, "config.dns_config.searches"},
	{"search list too long", func(c *runtimeapi.PodSandboxConfig) {
		c.DnsConfig.Searches = []string{strings.Repeat("a", 1100), strings.Repeat("b", 1000)}
	}, "config.dns_config.searches"},
	{"search with a space", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Searches = []string{"a b"} }, "config.dns_config.searches[0]"},
	{"option with a newline", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Options = []string{"ndots:5\nnameserver"} }, "config.dns_config.options[0]"},
	{"host port 65536", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostPort = 65536 }, "config.port_mappings[0].host_port"},
	{"host port -1", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostPort = -1 }, "config.port_mappings[0].host_port"},
	{"container port 70000", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[1].ContainerPort = 70000 }, "config.port_mappings[1].container_port"},
	{"host port to port 0", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].ContainerPort = 0 }, "config.port_mappings[0].container_port"},
	{"unknown protocol", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].Protocol = 7 }, "config.port_mappings[0].protocol"},
	{"bad host IP", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostIp = "300.1.1.1" }, "config.port_mappings[0].host_ip"},
	{"label key too long", func(c *runtimeapi.PodSandboxConfig) { c.Labels[strings.Repeat("k", 318)] = "v" }, "config.labels"},
	{"empty label key", func(c *runtimeapi.PodSandboxConfig) { c.Labels[""] = "v" }, "config.labels"},
	{"annotations over 256 KiB", func(c *runtimeapi.PodSandboxConfig) { c.Annotations["big"] = strings.Repeat("x", 256<<10) }, "config.annotations"},
	{"cgroup parent with ..", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/kubepods/../../escape" }, "config.linux.cgroup_parent"},
	{"pod cpuset", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Resources.CpusetCpus = "0-" }, "config.linux.resources.cpuset_cpus"},
	{"negative overhead", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.Overhead = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -5}
	}, "config.linux.overhead.memory_limit_in_bytes"},
	{"relative seccomp profile", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Seccomp: &runtimeapi.SecurityProfile{
			ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "profiles/x.json"}}
	}, "config.linux.security_context.seccomp.localhost_ref"},
}

var ContainerCases = []ctrCase{
	{"accepted", func(*runtimeapi.ContainerConfig) {}, ""},
	{"empty name", func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "" }, "config.metadata.name"},
	{"name with a slash", func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "a/b" }, "config.metadata.name"},
	{"no image", func(c *runtimeapi.ContainerConfig) { c.Image = nil }, "config.image.image"},
	{"log path with ..", func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../../etc/cron.d/x" }, "config.log_path"},
	{"absolute log path", func(c *runtimeapi.ContainerConfig) { c.LogPath = "/etc/x.log" }, "config.log_path"},
	{"NUL in an argument", func(c *runtimeapi.ContainerConfig) { c.Args = []string{"a\x00b"} }, "config.args[0]"},
	{"argument past MAX_ARG_STRLEN", func(c *runtimeapi.ContainerConfig) { c.Command = []string{strings.Repeat("a", 32*4096)} }, "config.command[0]"},
	{"argv past ARG_MAX", func(c *runtimeapi.ContainerConfig) {
		c.Args = nil
		for range 20 {
			c.Args = append(c.Args, strings.Repeat("a", 120000))
		}
	}, "ARG_MAX"},
	{"env key empty", func(c *runtimeapi.ContainerConfig) { c.Envs = []*runtimeapi.KeyValue{{Value: []byte("x")}} }, "config.envs[0].key"},
	{"env too big", func(c *runtimeapi.ContainerConfig) {
		c.Envs = []*runtimeapi.KeyValue{{Key: "BIG", Value: []byte(strings.Repeat("v", 200000))}}
	}, "config.envs[0]"},
	{"relative working dir", func(c *runtimeapi.ContainerConfig) { c.WorkingDir = "srv" }, "config.working_dir"},
	{"relative mount", func(c *runtimeapi.ContainerConfig) { c.Mounts[0].ContainerPath = "data" }, "config.mounts[0].container_path"},
	{"mount with ..", func(c *runtimeapi.ContainerConfig) { c.Mounts[0].ContainerPath = "/data/../../proc" }, "config.mounts[0].container_path"},
	{"relative host path", func(c *runtimeapi.ContainerConfig) { c.Mounts[0].HostPath = "var/lib" }, "config.mounts[0].host_path"},
	{"image sub-path escaping", func(c *runtimeapi.ContainerConfig) { c.Mounts[1].ImageSubPath = "../../etc" }, "config.mounts[1].image_sub_path"},
	{"absolute image sub-path", func(c *runtimeapi.ContainerConfig) { c.Mounts[1].ImageSubPath = "/etc" }, "config.mounts[1].image_sub_path"},
	{"relative device", func(c *runtimeapi.ContainerConfig) { c.Devices[0].ContainerPath = "dev/fuse" }, "config.devices[0].container_path"},
	{"device host path with ..", func(c *runtimeapi.ContainerConfig) { c.Devices[0].HostPath = "/dev/../etc/shadow" }, "config.devices[0].host_path"},
	{"device permissions", func(c *runtimeapi.ContainerConfig) { c.Devices[0].Permissions = "rwx" }, "config.devices[0].permissions"},
	{"annotation key with newline", func(c *runtimeapi.ContainerConfig) { c.Annotations = map[string]string{"a\nb": ""} }, "config.annotations"},
	{"negative memory", func(c *runtimeapi.ContainerConfig) { res(c).MemoryLimitInBytes = -1 }, "config.linux.resources.memory_limit_in_bytes"},
	{"negative quota", func(c *runtimeapi.ContainerConfig) { res(c).CpuQuota = -2 }, "config.linux.resources.cpu_quota"},
	{"quota of -1 is no limit", func(c *runtimeapi.ContainerConfig) { res(c).CpuQuota = -1 }, ""},
	{"quota under 1 ms", func(c *runtimeapi.ContainerConfig) { res(c).CpuQuota = 999 }, "config.linux.resources.cpu_quota"},
	{"negative shares", func(c *runtimeapi.ContainerConfig) { res(c).CpuShares = -1 }, "config.linux.resources.cpu_shares"},
	{"shares too big", func(c *runtimeapi.ContainerConfig) { res(c).CpuShares = 262145 }, "config.linux.resources.cpu_shares"},
	{"negative period", func(c *runtimeapi.ContainerConfig) { res(c).CpuPeriod = -100 }, "config.linux.resources.cpu_period"},
	{"period over 1 s", func(c *runtimeapi.ContainerConfig) { res(c).CpuPeriod = 1000001 }, "config.linux.resources.cpu_period"},
	{"swap below -1", func(c *runtimeapi.ContainerConfig) { res(c).MemorySwapLimitInBytes = -2 }, "config.linux.resources.memory_swap_limit_in_bytes"},
	{"oom_score_adj 1001", func(c *runtimeapi.ContainerConfig) { res(c).OomScoreAdj = 1001 }, "config.linux.resources.oom_score_adj"},
	{"cpuset garbage", func(c *runtimeapi.ContainerConfig) { res(c).CpusetCpus = "0-a" }, "config.linux.resources.cpuset_cpus"},
	{"cpuset reversed", func(c *runtimeapi.ContainerConfig) { res(c).CpusetCpus = "3-1" }, "config.linux.resources.cpuset_cpus"},
	{"cpuset mems", func(c *runtimeapi.ContainerConfig) { res(c).CpusetMems = "0,,1" }, "config.linux.resources.cpuset_mems"},
	{"hugepage size", func(c *runtimeapi.ContainerConfig) {
		res(c).HugepageLimits = []*runtimeapi.HugepageLimit{{PageSize: "2MiB"}}
	}, "config.linux.resources.hugepage_limits"},
	{"unified key with a slash", func(c *runtimeapi.ContainerConfig) {
		res(c).Unified = map[string]string{"../memory.max": "1"}
	}, "config.linux.resources.unified"},
	{"run_as_group alone", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 1}}
	}, "config.linux.security_context.run_as_group"},
}

// run checks each case's edited config with fn.
func run[T proto.Message](t *testing.T, cases []testCase[T], good func() T, fn func(T) error) {
	t.Helper()
	for _, tc := range cases {
		cfg := good()
		tc.edit(cfg)
		check(t, tc.name, fn(cfg), tc.field)
	}
}

func TestPodSandbox(t *testing.T) {
	run(t, PodCases, goodPod, validate.PodSandbox)
	check(t, "nil", validate.PodSandbox(nil), "config")
}

func TestContainer(t *testing.T) {
	run(t, ContainerCases, goodContainer, validate.Container)
	check(t, "nil", validate.Container(nil), "config")
}

func TestExec(t *testing.T) {
	check(t, "empty", validate.Exec("cmd", nil), "cmd")
	check(t, "NUL", validate.Exec("cmd", []string{"sh", "-c", "\x00"}), "cmd.command[2]")
	check(t, "fine", validate.Exec("cmd", []string{"sh", "-c", "echo\n"}), "")
}

func check(t *testing.T, name string, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
		return
	}
	var ve *validate.Error
	if !errors.As(err, &ve) {
		t.Errorf("%s: got %v, want a refusal naming %s", name, err, field)
		return
	}
	if !strings.Contains(err.Error(), field) {
		t.Errorf("%s: %q does not name %s", name, err, field)
	}
}

// The cases' configs, encoded, seed the fuzz targets; the few that test
// size limits are left out, as mutating megabytes makes fuzzing crawl.
const maxSeed = 64 << 10

// seeds are the cases' configs, encoded.
func seeds[T proto.Message](cases []testCase[T], good func() T) [][]byte {
	var out [][]byte
	for _, tc := range cases {
		cfg := good()
		tc.edit(cfg)
		if b, _ := proto.Marshal(cfg); len(b) <= maxSeed {
			out = append(out, b)
		}
	}
	return out
}
