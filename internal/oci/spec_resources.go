package oci

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

// ClampOOMScoreAdj raises v to what the daemon may set: without
// CAP_SYS_RESOURCE, runc fails to lower oom_score_adj below our own.
func ClampOOMScoreAdj(v, min int) int {
	if v < min {
		return min
	}
	return v
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

func setResources(g *generate.Generator, in *ContainerInput) {
	r := in.Config.GetLinux().GetResources()
	adj := ClampOOMScoreAdj(int(r.GetOomScoreAdj()), in.Defaults.MinOOMScoreAdj)
	g.SetProcessOOMScoreAdj(adj)
	if r == nil {
		if in.Defaults.PidsLimit > 0 {
			g.SetLinuxResourcesPidsLimit(in.Defaults.PidsLimit)
		}
		return
	}
	if v := r.GetCpuPeriod(); v > 0 {
		g.SetLinuxResourcesCPUPeriod(uint64(v))
	}
	if v := r.GetCpuQuota(); v > 0 {
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
	if v := r.GetMemoryLimitInBytes(); v > 0 {
		g.SetLinuxResourcesMemoryLimit(v)
		if s := r.GetMemorySwapLimitInBytes(); s > 0 {
			g.SetLinuxResourcesMemorySwap(s)
		} else if swapAccounting() {
			g.SetLinuxResourcesMemorySwap(v) // no swap beyond the limit, as the kubelet expects
		}
	}
	for _, h := range r.GetHugepageLimits() {
		g.AddLinuxResourcesHugepageLimit(h.GetPageSize(), h.GetLimit())
	}
	if len(r.GetUnified()) > 0 {
		g.Config.Linux.Resources.Unified = map[string]string{}
		for k, v := range r.GetUnified() {
			g.Config.Linux.Resources.Unified[k] = v
		}
	}
	if in.Defaults.PidsLimit > 0 {
		g.SetLinuxResourcesPidsLimit(in.Defaults.PidsLimit)
	}
}

func swapAccounting() bool {
	for _, p := range []string{"/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

func setDevices(g *generate.Generator, in *ContainerInput) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	if sc.GetPrivileged() {
		// All host devices, as docker and CRI-O do for privileged.
		g.Config.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		devs, _ := filepath.Glob("/dev/*")
		for _, d := range devs {
			if dev, err := deviceFromPath(d, d, "rwm"); err == nil {
				g.AddDevice(*dev)
			}
		}
		return nil
	}
	for i, d := range in.Config.GetDevices() {
		field := "devices[" + itoa(i) + "]"
		if !filepath.IsAbs(d.GetContainerPath()) {
			return fieldErr(field+".container_path", "%q is not absolute", d.GetContainerPath())
		}
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		dev, err := deviceFromPath(d.GetHostPath(), d.GetContainerPath(), perms)
		if err != nil {
			return fieldErr(field+".host_path", "%v", err)
		}
		g.AddDevice(*dev)
		g.AddLinuxResourcesDevice(true, dev.Type, &dev.Major, &dev.Minor, perms)
	}
	return nil
}
