package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// hostState is everything a refused request could have left: the CRI's
// lists, the daemon's pod and container dirs and records, and what
// leaks() sees on the host (pins, mounts, monitors, IPs, veths, cgroups).
func (d *daemon) hostState(t *testing.T) []string {
	t.Helper()
	var out []string
	pods, err := d.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.GetItems() {
		out = append(out, "pod "+p.GetId())
	}
	ctrs, err := d.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrs.GetContainers() {
		out = append(out, "container "+c.GetId())
	}
	for _, dir := range []string{
		filepath.Join(d.runroot, "pods"), filepath.Join(d.runroot, "containers"), filepath.Join(d.runroot, "ns"),
		filepath.Join(d.dir, "root", "records", "sandboxes"), filepath.Join(d.dir, "root", "records", "containers"),
	} {
		for _, e := range dirEntries(dir) {
			out = append(out, "file "+filepath.Join(dir, e))
		}
	}
	out = append(out, d.leaks()...)
	slices.Sort(out)
	return out
}

type hostileCase struct {
	name    string
	call    func() error
	code    codes.Code
	field   string
	outside []string // paths that must not exist afterwards
}

// Every field class the runtime validates, through the real daemon: each
// refusal has its exact code and names its field, and leaves nothing in
// the daemon, on the host, or outside the base directory it aimed at.
func TestHostileInputTable(t *testing.T) {
	d := newDaemon(t)
	c := ctx(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "hostile")
	pod := d.runPod(t, podCfg)
	running := d.startContainer(t, pod, podCfg, containerConfig("running", "sleep", "1000"))
	outside := t.TempDir()
	escCgroup := fmt.Sprintf("cradle-escape-%d", os.Getpid())

	runPod := func(edit func(*runtimeapi.PodSandboxConfig)) func() error {
		return func() error {
			cfg := d.podConfig(t, "bad")
			edit(cfg)
			_, err := d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			return err
		}
	}
	create := func(edit func(*runtimeapi.ContainerConfig)) func() error {
		return func() error {
			cfg := containerConfig("bad", "true")
			edit(cfg)
			_, err := d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
			return err
		}
	}
	update := func(r *runtimeapi.LinuxContainerResources) func() error {
		return func() error {
			_, err := d.rt.UpdateContainerResources(c, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: running, Linux: r})
			return err
		}
	}
	const inv = codes.InvalidArgument
	cases := []hostileCase{
		// Paths out of their base directories.
		{"cgroup parent with ..", runPod(func(p *runtimeapi.PodSandboxConfig) {
			p.Linux.CgroupParent = d.cgroup + "/../../" + escCgroup
		}), inv, "config.linux.cgroup_parent", []string{"/sys/fs/cgroup/memory/" + escCgroup, "/sys/fs/cgroup/pids/" + escCgroup}},
		{"relative log directory", runPod(func(p *runtimeapi.PodSandboxConfig) { p.LogDirectory = "rel/logs" }), inv, "config.log_directory", nil},
		{"log directory with ..", runPod(func(p *runtimeapi.PodSandboxConfig) {
			p.LogDirectory = outside + "/logs/../escaped"
		}), inv, "config.log_directory", []string{outside + "/escaped"}},
		{"pod name with a path", runPod(func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Name = "../../x" }), inv, "config.metadata.name", nil},
		{"log path with ..", create(func(c *runtimeapi.ContainerConfig) {
			c.LogPath = "../../../../../../../.." + outside + "/escaped.log"
		}), inv, "config.log_path", []string{outside + "/escaped.log"}},
		{"absolute log path", create(func(c *runtimeapi.ContainerConfig) { c.LogPath = outside + "/abs.log" }), inv, "config.log_path", []string{outside + "/abs.log"}},
		{"mount with ..", create(func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/../../proc/x", HostPath: outside}}
		}), inv, "config.mounts[0].container_path", nil},
		{"relative host path", create(func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "tmp"}}
		}), inv, "config.mounts[0].host_path", nil},
		{"image sub-path escaping", create(func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: busybox}, ImageSubPath: "../../../etc"}}
		}), inv, "config.mounts[0].image_sub_path", nil},
		{"device with ..", create(func(c *runtimeapi.ContainerConfig) {
			c.Devices = []*runtimeapi.Device{{ContainerPath: "/dev/x", HostPath: "/dev/../etc/shadow", Permissions: "r"}}
		}), inv, "config.devices[0].host_path", nil},
		// Errors that runc or a CNI plugin found, after the work was done.
		{"cpuset", create(func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpusetCpus: "0-a"}
		}), inv, "config.linux.resources.cpuset_cpus", nil},
		{"host port 70000", runPod(func(p *runtimeapi.PodSandboxConfig) {
			p.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 70000}}
		}), inv, "config.port_mappings[0].host_port", nil},
		{"hostname of 64 bytes", runPod(func(p *runtimeapi.PodSandboxConfig) { p.Hostname = strings.Repeat("h", 64) }), inv, "config.hostname", nil},
		// Values past the kernel's or Kubernetes' limits.
		{"negative memory", create(func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}
		}), inv, "config.linux.resources.memory_limit_in_bytes", nil},
		{"negative quota", create(func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuQuota: -5}
		}), inv, "config.linux.resources.cpu_quota", nil},
		{"negative shares", create(func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: -2}
		}), inv, "config.linux.resources.cpu_shares", nil},
		{"negative pod overhead", runPod(func(p *runtimeapi.PodSandboxConfig) {
			p.Linux.Overhead = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}
		}), inv, "config.linux.overhead.memory_limit_in_bytes", nil},
		{"update: negative memory", update(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}), inv, "linux.memory_limit_in_bytes", nil},
		{"update: cpuset", update(&runtimeapi.LinuxContainerResources{CpusetMems: "x"}), inv, "linux.cpuset_mems", nil},
		{"4 nameservers", runPod(func(p *runtimeapi.PodSandboxConfig) {
			p.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}}
		}), inv, "config.dns_config.servers", nil},
		{"33 search domains", runPod(func(p *runtimeapi.PodSandboxConfig) {
			p.DnsConfig = &runtimeapi.DNSConfig{Searches: slices.Repeat([]string{"a.example"}, 33)}
		}), inv, "config.dns_config.searches", nil},
		{"nameserver line injection", runPod(func(p *runtimeapi.PodSandboxConfig) {
			p.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.0.0.1\nnameserver 6.6.6.6"}}
		}), inv, "config.dns_config.servers[0]", nil},
		{"label key too long", runPod(func(p *runtimeapi.PodSandboxConfig) { p.Labels[strings.Repeat("k", 400)] = "v" }), inv, "config.labels", nil},
		{"annotations over 256 KiB", create(func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{"big": strings.Repeat("x", 300<<10)}
		}), inv, "config.annotations", nil},
		{"argv past ARG_MAX", create(func(c *runtimeapi.ContainerConfig) {
			c.Args = slices.Repeat([]string{strings.Repeat("a", 100000)}, 25)
		}), inv, "ARG_MAX", nil},
		{"env past MAX_ARG_STRLEN", create(func(c *runtimeapi.ContainerConfig) {
			c.Envs = []*runtimeapi.KeyValue{{Key: "BIG", Value: []byte(strings.Repeat("v", 200000))}}
		}), inv, "config.envs[0]", nil},
		{"NUL in the command", create(func(c *runtimeapi.ContainerConfig) { c.Command = []string{"sh\x00"} }), inv, "config.command[0]", nil},
		{"relative working dir", create(func(c *runtimeapi.ContainerConfig) { c.WorkingDir = "tmp" }), inv, "config.working_dir", nil},
		{"exec with NUL", func() error {
			_, err := d.rt.ExecSync(c, &runtimeapi.ExecSyncRequest{ContainerId: running, Cmd: []string{"echo", "a\x00b"}})
			return err
		}, inv, "cmd.command[1]", nil},
	}
	before := d.hostState(t)
	for _, tc := range cases {
		err := tc.call()
		wantCode(t, tc.name, err, tc.code, tc.field)
		if after := d.hostState(t); !slices.Equal(before, after) {
			t.Errorf("%s: state changed:\nbefore %v\nafter  %v", tc.name, before, after)
			before = after
		}
		for _, p := range tc.outside {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s: %s was created", tc.name, p)
				_ = os.RemoveAll(p)
			}
		}
	}
	if _, err := d.rt.RemoveContainer(c, &runtimeapi.RemoveContainerRequest{ContainerId: running}); err != nil {
		t.Fatal(err)
	}
}

// A retry of RunPodSandbox (the same config) gets the same pod; another
// config under the same metadata is AlreadyExists, and changes nothing.
func TestRunPodSandboxSameMetadataOtherConfig(t *testing.T) {
	d := newDaemon(t)
	c := ctx(t)
	cfg := d.podConfig(t, "twice")
	id := d.runPod(t, cfg)
	again, err := d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil || again.GetPodSandboxId() != id {
		t.Fatalf("retry with the same config: %v, %v; want %s", again.GetPodSandboxId(), err, id)
	}
	before := d.hostState(t)
	other := d.podConfig(t, "twice")
	other.Metadata = cfg.Metadata
	other.Labels["changed"] = "yes"
	_, err = d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: other})
	wantCode(t, "same metadata, other labels", err, codes.AlreadyExists, "config.metadata")
	if after := d.hostState(t); !slices.Equal(before, after) {
		t.Errorf("state changed:\nbefore %v\nafter  %v", before, after)
	}
}
