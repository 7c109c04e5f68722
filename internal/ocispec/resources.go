package ocispec

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/cradle-runtime/cradle/internal/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ClampOOMScoreAdj keeps v within what the daemon may set, [min, 1000]:
// without CAP_SYS_RESOURCE, runc fails to lower oom_score_adj below our
// own.
func ClampOOMScoreAdj(v, lowest int) int {
	return max(lowest, min(v, 1000))
}

// OwnOOMScoreAdj reads this process's oom_score_adj.
func OwnOOMScoreAdj() int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return v
}

// setResources places the container under its pod's cgroup and applies the
// config's limits.
func setResources(g *generate.Generator, in *ContainerInput) error {
	cg, err := cgroupsPath(in)
	if err != nil {
		return err
	}
	g.SetLinuxCgroupsPath(cg)
	r := in.Config.GetLinux().GetResources()
	g.SetProcessOOMScoreAdj(ClampOOMScoreAdj(int(r.GetOomScoreAdj()), in.Defaults.MinOOMScoreAdj))
	res, err := Resources(r, "linux.resources")
	if err != nil {
		return err
	}
	if in.Defaults.PidsLimit > 0 && hostControllers()["pids"] {
		res.Pids = &specs.LinuxPids{Limit: ptr(in.Defaults.PidsLimit)}
	}
	// The base spec's device rules stay; setDevices adds to them.
	if old := g.Config.Linux.Resources; old != nil {
		res.Devices = old.Devices
	}
	g.Config.Linux.Resources = res
	return nil
}

// Resources turns CRI limits into OCI ones, for CreateContainer and
// UpdateContainerResources alike. field names r in errors. A limit the
// host's cgroups can't enforce is dropped, with a debug log, when it asks
// for nothing (zero or unset, as the kubelet sends a zero hugepage limit
// for every page size the node has); when it asks for something it is
// refused with a HostError naming the field, rather than failing deep in
// the OCI runtime.
func Resources(r *runtimeapi.LinuxContainerResources, field string) (*specs.LinuxResources, error) {
	res := &specs.LinuxResources{}
	if r == nil {
		return res, nil
	}
	ctl := hostControllers()
	// need reports whether the controller is there; set says the pod asked.
	need := func(controller, name string, set bool) (bool, error) {
		if ctl[controller] {
			return true, nil
		}
		if set {
			return false, hostErr(field+"."+name, "the host has no %s cgroup controller to enforce it", controller)
		}
		slog.Debug("dropping a limit the host can't enforce", "field", field+"."+name, "controller", controller)
		return false, nil
	}
	cpu := &specs.LinuxCPU{}
	if ok, err := need("cpu", "cpu_period", r.GetCpuPeriod() > 0); err != nil {
		return nil, err
	} else if ok && r.GetCpuPeriod() > 0 {
		cpu.Period = ptr(uint64(r.GetCpuPeriod()))
	}
	if ok, err := need("cpu", "cpu_quota", r.GetCpuQuota() > 0); err != nil {
		return nil, err
	} else if ok && r.GetCpuQuota() != 0 {
		cpu.Quota = ptr(r.GetCpuQuota())
	}
	if ok, err := need("cpu", "cpu_shares", r.GetCpuShares() > 0); err != nil {
		return nil, err
	} else if ok && r.GetCpuShares() > 0 {
		cpu.Shares = ptr(uint64(r.GetCpuShares()))
	}
	if ok, err := need("cpuset", "cpuset_cpus", r.GetCpusetCpus() != ""); err != nil {
		return nil, err
	} else if ok {
		cpu.Cpus = r.GetCpusetCpus()
	}
	if ok, err := need("cpuset", "cpuset_mems", r.GetCpusetMems() != ""); err != nil {
		return nil, err
	} else if ok {
		cpu.Mems = r.GetCpusetMems()
	}
	if *cpu != (specs.LinuxCPU{}) {
		res.CPU = cpu
	}
	limit, swap := r.GetMemoryLimitInBytes(), r.GetMemorySwapLimitInBytes()
	if ok, err := need("memory", "memory_limit_in_bytes", limit > 0); err != nil {
		return nil, err
	} else if ok && limit > 0 {
		res.Memory = &specs.LinuxMemory{Limit: ptr(limit)}
		// As containerd: no swap beyond the limit unless asked, and swap
		// only where the memory cgroup can limit it. Without swap
		// accounting a swap limit can't be set; the kubelet's own default
		// (swap = limit) then means what the host does anyway.
		if swap == 0 {
			swap = limit
		}
		switch {
		case hostSwap():
			res.Memory.Swap = ptr(swap)
		case swap > limit:
			// Swap asked for beyond the limit: without swap accounting it
			// could be neither granted nor bounded.
			return nil, hostErr(field+".memory_swap_limit_in_bytes", "%d is above the memory limit %d, but the memory cgroup has no swap accounting to enforce it", swap, limit)
		default:
			slog.Debug("dropping the swap limit: the memory cgroup has no swap accounting", "field", field+".memory_swap_limit_in_bytes")
		}
	}
	for _, h := range r.GetHugepageLimits() {
		name := fmt.Sprintf("hugepage_limits[%s]", h.GetPageSize())
		if ok, err := need("hugetlb", name, h.GetLimit() > 0); err != nil {
			return nil, err
		} else if ok {
			res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
		}
	}
	if len(r.GetUnified()) > 0 {
		if !hostCgroup2() {
			return nil, hostErr(field+".unified", "the host does not run the unified cgroup v2 hierarchy")
		}
		res.Unified = maps.Clone(r.GetUnified())
	}
	return res, nil
}

func ptr[T any](v T) *T { return &v }

// cgroupsPath is the container's cgroup under its pod's parent (or the
// daemon's default parent): a path for cgroupfs, "slice:cradle:<id>" for
// systemd.
func cgroupsPath(in *ContainerInput) (string, error) {
	const field = "linux.cgroup_parent"
	parent := in.Sandbox.CgroupParent
	if parent == "" {
		parent = in.Defaults.CgroupParent
	}
	// The daemon's default too: path.Join would clean ".." away silently.
	if err := validate.CgroupParent(field, parent); err != nil {
		return "", err
	}
	switch in.Defaults.CgroupDriver {
	case CgroupDriverSystemd:
		if parent == "" {
			parent = "system.slice"
		}
		if !strings.HasSuffix(parent, ".slice") || strings.Contains(parent, "/") {
			return "", fieldErr(field, "the pod's cgroup parent %q is not a systemd slice (name.slice), as the systemd cgroup driver needs", parent)
		}
		return parent + ":cradle:" + in.ID, nil
	case CgroupDriverCgroupfs, "":
		if parent == "" {
			parent = "/cradle"
		}
		if strings.HasSuffix(parent, ".slice") && !strings.Contains(parent, "/") {
			return "", fieldErr(field, "the pod's cgroup parent %q is a systemd slice, but the runtime uses the cgroupfs driver", parent)
		}
		return path.Join("/", parent, "cradle-"+in.ID), nil
	}
	return "", fmt.Errorf("unknown cgroup driver %q", in.Defaults.CgroupDriver)
}
