package validate

import (
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/cpuset"
)

// Kernel limits on CFS bandwidth and shares (kernel/sched/core.c): a period
// or quota under 1 ms or a period over 1 s is EINVAL from the cgroup file.
const (
	MinCPUPeriod = 1000
	MaxCPUPeriod = 1000000
	MinCPUQuota  = 1000
	MaxCPUShares = 262144
)

// Resources checks container (or pod) limits, for CreateContainer,
// RunPodSandbox and UpdateContainerResources alike. Zero means unset, as
// in the CRI; -1 is "no limit" for cpu_quota (the kubelet sends it for
// pods with exclusive CPUs) and for swap.
func Resources(field string, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	f := func(name string) string { return field + "." + name }
	switch p := r.GetCpuPeriod(); {
	case p < 0:
		return errf(f("cpu_period"), "%d is negative", p)
	case p > 0 && (p < MinCPUPeriod || p > MaxCPUPeriod):
		return errf(f("cpu_period"), "%d µs is outside the kernel's range %d-%d", p, MinCPUPeriod, MaxCPUPeriod)
	}
	switch q := r.GetCpuQuota(); {
	case q < -1:
		return errf(f("cpu_quota"), "%d is negative (-1 is no limit)", q)
	case q > 0 && q < MinCPUQuota:
		return errf(f("cpu_quota"), "%d µs is below the kernel's minimum %d", q, MinCPUQuota)
	}
	switch s := r.GetCpuShares(); {
	case s < 0:
		return errf(f("cpu_shares"), "%d is negative", s)
	case s > MaxCPUShares:
		return errf(f("cpu_shares"), "%d is above the kernel's maximum %d", s, MaxCPUShares)
	}
	if v := r.GetMemoryLimitInBytes(); v < 0 {
		return errf(f("memory_limit_in_bytes"), "%d is negative", v)
	}
	if v := r.GetMemorySwapLimitInBytes(); v < -1 {
		return errf(f("memory_swap_limit_in_bytes"), "%d is negative (-1 is no limit)", v)
	}
	if v := r.GetOomScoreAdj(); v < -1000 || v > 1000 {
		return errf(f("oom_score_adj"), "%d is outside the kernel's range -1000 to 1000", v)
	}
	for _, c := range []struct{ name, v string }{{"cpuset_cpus", r.GetCpusetCpus()}, {"cpuset_mems", r.GetCpusetMems()}} {
		if c.v == "" {
			continue
		}
		if _, err := cpuset.Parse(c.v); err != nil || strings.TrimSpace(c.v) != c.v {
			return errf(f(c.name), "%q is not a CPU list such as 0-3,5", c.v)
		}
	}
	for _, h := range r.GetHugepageLimits() {
		if !validPageSize(h.GetPageSize()) {
			return errf(f("hugepage_limits"), "page size %q is not a size such as 2MB or 1GB", h.GetPageSize())
		}
	}
	for k, v := range r.GetUnified() {
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			return errf(f("unified"), "key %q is not a cgroup file name", k)
		}
		if err := noNUL(f("unified["+k+"]"), v); err != nil {
			return err
		}
	}
	return nil
}

// validPageSize is the hugetlb controller's form: digits and KB, MB or GB.
func validPageSize(s string) bool {
	for _, suf := range []string{"KB", "MB", "GB"} {
		if n, ok := strings.CutSuffix(s, suf); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			return true
		}
	}
	return false
}
