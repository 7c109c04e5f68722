package ocispec

import (
	"github.com/opencontainers/cgroups"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultCPUPeriod is the CFS period the kernel and the kubelet use.
const defaultCPUPeriod = 100000

// PodTotal is a pod's sizing as the kubelet sizes the pod cgroup: the sum
// of its containers' resources plus the pod overhead. A limit the
// resources leave unset (no quota, no memory limit) stays unlimited, as
// the overhead alone limits nothing. The overhead's quota is scaled to the
// resources' CFS period.
func PodTotal(res, overhead *runtimeapi.LinuxContainerResources) *runtimeapi.LinuxContainerResources {
	t := &runtimeapi.LinuxContainerResources{CpuShares: res.GetCpuShares() + overhead.GetCpuShares()}
	if res.GetCpuQuota() > 0 {
		period := res.GetCpuPeriod()
		if period <= 0 {
			period = defaultCPUPeriod
		}
		oq := overhead.GetCpuQuota()
		if op := overhead.GetCpuPeriod(); oq > 0 && op > 0 && op != period {
			oq = oq * period / op
		}
		t.CpuPeriod, t.CpuQuota = period, res.GetCpuQuota()+max(oq, 0)
	}
	if res.GetMemoryLimitInBytes() > 0 {
		t.MemoryLimitInBytes = res.GetMemoryLimitInBytes() + max(overhead.GetMemoryLimitInBytes(), 0)
	}
	return t
}

// PodCgroupLimits are the cgroup limits of a pod sizing from PodTotal: an
// unset quota or memory limit is written as unlimited (-1), so that an
// update lifts an earlier limit.
func PodCgroupLimits(t *runtimeapi.LinuxContainerResources) *cgroups.Resources {
	r := &cgroups.Resources{CpuShares: uint64(max(t.GetCpuShares(), 0)), CpuQuota: -1, Memory: -1}
	if t.GetCpuQuota() > 0 {
		r.CpuQuota, r.CpuPeriod = t.GetCpuQuota(), uint64(t.GetCpuPeriod())
	}
	if t.GetMemoryLimitInBytes() > 0 {
		r.Memory = t.GetMemoryLimitInBytes()
	}
	return r
}
