package oci

import (
	"fmt"
	"maps"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-tools/generate"
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
	if in.Defaults.PidsLimit > 0 {
		g.SetLinuxResourcesPidsLimit(in.Defaults.PidsLimit)
	}
	if v := r.GetCpuPeriod(); v > 0 {
		g.SetLinuxResourcesCPUPeriod(uint64(v))
	}
	if v := r.GetCpuQuota(); v != 0 {
		g.SetLinuxResourcesCPUQuota(v)
	}
	if v := r.GetCpuShares(); v > 0 {
		g.SetLinuxResourcesCPUShares(uint64(v))
	}
	if v := r.GetCpusetCpus(); v != "" {
		g.SetLinuxResourcesCPUCpus(v)
	}
	if v := r.GetCpusetMems(); v != "" {
		g.SetLinuxResourcesCPUMems(v)
	}
	limit, swap := r.GetMemoryLimitInBytes(), r.GetMemorySwapLimitInBytes()
	if limit > 0 {
		g.SetLinuxResourcesMemoryLimit(limit)
	}
	// As containerd: no swap beyond the limit unless asked, and swap only
	// where the memory cgroup can limit it.
	if swap == 0 && limit > 0 {
		swap = limit
	}
	if swap != 0 && hostSwap() {
		g.SetLinuxResourcesMemorySwap(swap)
	}
	for _, h := range r.GetHugepageLimits() {
		g.AddLinuxResourcesHugepageLimit(h.GetPageSize(), h.GetLimit())
	}
	if len(r.GetUnified()) > 0 {
		g.Config.Linux.Resources.Unified = maps.Clone(r.GetUnified())
	}
	return nil
}

// cgroupsPath is the container's cgroup under its pod's parent (or the
// daemon's default parent): a path for cgroupfs, "slice:cradle:<id>" for
// systemd.
func cgroupsPath(in *ContainerInput) (string, error) {
	const field = "linux.cgroup_parent"
	parent := in.Sandbox.CgroupParent
	if parent == "" {
		parent = in.Defaults.CgroupParent
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
