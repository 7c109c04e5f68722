package ocispec

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestResources(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	adj := func(v int) func(*specs.Spec) { return func(s *specs.Spec) { s.Process.OOMScoreAdj = &v } }
	runSpecCases(t, []specCase{
		{
			name: "every limit",
			host: func(h *testHost) { h.cgroup2 = true },
			in: func(in *ContainerInput) {
				in.Defaults.PidsLimit = 100
				r := resources(in)
				r.CpuPeriod, r.CpuQuota, r.CpuShares = 100000, 50000, 512
				r.CpusetCpus, r.CpusetMems = "0-1", "0"
				r.MemoryLimitInBytes = 256 << 20
				r.OomScoreAdj = 500
				r.HugepageLimits = []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}, {PageSize: "1GB"}}
				r.Unified = map[string]string{"memory.high": "200000000"}
			},
			want: func(s *specs.Spec) {
				adj(500)(s)
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
				r := s.Linux.Resources
				r.Pids = &specs.LinuxPids{Limit: i64(100)}
				r.CPU = &specs.LinuxCPU{Period: u64(100000), Quota: i64(50000), Shares: u64(512), Cpus: "0-1", Mems: "0"}
				r.Memory = &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(256 << 20)}
				r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}, {Pagesize: "1GB", Limit: 0}}
				r.Unified = map[string]string{"memory.high": "200000000"}
			},
		},
		{
			// The kubelet sends a zero limit for every page size the node
			// has; without the controller that asks nothing.
			name: "zero hugepage limits dropped without hugetlb",
			host: func(h *testHost) { delete(h.controllers, "hugetlb") },
			in: func(in *ContainerInput) {
				r := resources(in)
				r.MemoryLimitInBytes = 1 << 20
				r.HugepageLimits = []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}}
			},
			want: func(s *specs.Spec) {
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(1 << 20)}
			},
		},
		{
			name: "unset limits dropped without their controllers",
			host: func(h *testHost) { h.controllers = map[string]bool{} },
			in: func(in *ContainerInput) {
				in.Defaults.PidsLimit = 100
				r := resources(in)
				r.CpuQuota = -1
			},
		},
		{
			name: "swap asked",
			in: func(in *ContainerInput) {
				resources(in).MemoryLimitInBytes, resources(in).MemorySwapLimitInBytes = 1<<20, 3<<20
			},
			want: func(s *specs.Spec) {
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(3 << 20)}
			},
		},
		{
			name: "no swap limit where it cannot be limited, when none is asked for",
			host: func(h *testHost) { h.swap = false },
			in: func(in *ContainerInput) {
				resources(in).MemoryLimitInBytes, resources(in).MemorySwapLimitInBytes = 1<<20, 1<<20
			},
			want: func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(1 << 20)} },
		},
		{
			name: "oom_score_adj no lower than the daemon's",
			in: func(in *ContainerInput) {
				in.Defaults.MinOOMScoreAdj = -500
				resources(in).OomScoreAdj = -999
			},
			want: adj(-500),
		},
		{
			name: "oom_score_adj no higher than 1000",
			in:   func(in *ContainerInput) { resources(in).OomScoreAdj = 2000 },
			want: adj(1000),
		},
		{
			name: "the default oom_score_adj is raised to the daemon's",
			in:   func(in *ContainerInput) { in.Defaults.MinOOMScoreAdj = 100 },
			want: adj(100),
		},
		{
			name: "cgroupfs: the daemon's parent when the pod has none",
			in:   func(in *ContainerInput) { in.Sandbox.CgroupParent, in.Defaults.CgroupParent = "", "/cradle-pods" },
			want: func(s *specs.Spec) { s.Linux.CgroupsPath = "/cradle-pods/cradle-c1" },
		},
		{
			name: "cgroupfs: /cradle when no one gives a parent",
			in: func(in *ContainerInput) {
				in.Sandbox.CgroupParent, in.Defaults.CgroupDriver = "", CgroupDriverCgroupfs
			},
			want: func(s *specs.Spec) { s.Linux.CgroupsPath = "/cradle/cradle-c1" },
		},
		{
			name: "cgroupfs: a relative parent is taken from the root",
			in:   func(in *ContainerInput) { in.Sandbox.CgroupParent = "kubepods/burstable/pod1" },
			want: func(s *specs.Spec) { s.Linux.CgroupsPath = "/kubepods/burstable/pod1/cradle-c1" },
		},
		{
			name: "systemd: slice:cradle:id",
			in: func(in *ContainerInput) {
				in.Sandbox.CgroupParent, in.Defaults.CgroupDriver = "kubepods-besteffort-pod1.slice", CgroupDriverSystemd
			},
			want: func(s *specs.Spec) { s.Linux.CgroupsPath = "kubepods-besteffort-pod1.slice:cradle:c1" },
		},
		{
			name: "systemd: system.slice when no one gives a parent",
			in: func(in *ContainerInput) {
				in.Sandbox.CgroupParent, in.Defaults.CgroupDriver = "", CgroupDriverSystemd
			},
			want: func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:cradle:c1" },
		},
		{
			name: "pod sysctls",
			in:   func(in *ContainerInput) { in.Sandbox.Sysctls = map[string]string{"net.core.somaxconn": "1024"} },
			want: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.core.somaxconn": "1024"} },
		},
	})
	runErrCases(t, []errCase{
		{
			name:  "systemd with a path parent",
			in:    func(in *ContainerInput) { in.Defaults.CgroupDriver = CgroupDriverSystemd },
			field: "linux.cgroup_parent", msg: `"/kubepods/pod1" is not a systemd slice`,
		},
		{
			name:  "cgroupfs with a slice parent",
			in:    func(in *ContainerInput) { in.Sandbox.CgroupParent = "kubepods.slice" },
			field: "linux.cgroup_parent", msg: "is a systemd slice, but the runtime uses the cgroupfs driver",
		},
		{
			name:  "a cgroup parent that climbs out",
			in:    func(in *ContainerInput) { in.Sandbox.CgroupParent = "/kubepods/../../../escape" },
			field: "linux.cgroup_parent", msg: `has a ".." segment`,
		},
		{
			name: "swap beyond the limit without swap accounting",
			host: func(h *testHost) { h.swap = false },
			in: func(in *ContainerInput) {
				resources(in).MemoryLimitInBytes, resources(in).MemorySwapLimitInBytes = 1<<20, 3<<20
			},
			field: "linux.resources.memory_swap_limit_in_bytes", msg: "no swap accounting", hostLimit: true,
		},
		{
			name: "a hugepage limit without hugetlb",
			host: func(h *testHost) { delete(h.controllers, "hugetlb") },
			in: func(in *ContainerInput) {
				resources(in).HugepageLimits = []*runtimeapi.HugepageLimit{{PageSize: "1GB"}, {PageSize: "2MB", Limit: 4 << 20}}
			},
			field: "linux.resources.hugepage_limits[2MB]", msg: "no hugetlb cgroup controller", hostLimit: true,
		},
		{
			name:  "a cpuset without the cpuset controller",
			host:  func(h *testHost) { delete(h.controllers, "cpuset") },
			in:    func(in *ContainerInput) { resources(in).CpusetCpus = "0" },
			field: "linux.resources.cpuset_cpus", msg: "no cpuset cgroup controller", hostLimit: true,
		},
		{
			name:  "a CPU quota without the cpu controller",
			host:  func(h *testHost) { delete(h.controllers, "cpu") },
			in:    func(in *ContainerInput) { resources(in).CpuQuota = 50000 },
			field: "linux.resources.cpu_quota", msg: "no cpu cgroup controller", hostLimit: true,
		},
		{
			name:  "a memory limit without the memory controller",
			host:  func(h *testHost) { delete(h.controllers, "memory") },
			in:    func(in *ContainerInput) { resources(in).MemoryLimitInBytes = 1 << 20 },
			field: "linux.resources.memory_limit_in_bytes", msg: "no memory cgroup controller", hostLimit: true,
		},
		{
			name:  "unified resources on cgroup v1",
			in:    func(in *ContainerInput) { resources(in).Unified = map[string]string{"memory.high": "1"} },
			field: "linux.resources.unified", msg: "unified cgroup v2", hostLimit: true,
		},
	})
	useHost(t, defaultHost())
	in := baseInput(t)
	in.Defaults.CgroupDriver = "cgmanager"
	var fe *FieldError
	if _, err := ContainerSpec(in); err == nil || errors.As(err, &fe) {
		t.Errorf("unknown cgroup driver: %v, want a daemon error", err)
	}
}

func TestClampOOMScoreAdj(t *testing.T) {
	for _, c := range [][3]int{{0, 0, 0}, {-1000, -999, -999}, {-5, -999, -5}, {1001, 0, 1000}, {-1000, -1000, -1000}} {
		if got := ClampOOMScoreAdj(c[0], c[1]); got != c[2] {
			t.Errorf("ClampOOMScoreAdj(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}
