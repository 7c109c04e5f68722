package stats

import (
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
)

// unlimited is the smallest limit treated as "no limit": cgroup v1 reports
// no limit as LONG_MAX rounded down to a page, v2 as "max" (MaxUint64).
const unlimited = 1 << 62

// WorkingSet is what the kubelet evicts on: usage minus the inactive file
// pages the kernel can drop at once. It never goes below zero, since the
// two counters are read at slightly different times.
func WorkingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

// Available is the limit minus the working set; false when unlimited.
func Available(limit, workingSet uint64) (uint64, bool) {
	if limit == 0 {
		return 0, false
	}
	if workingSet >= limit {
		return 0, true
	}
	return limit - workingSet, true
}

func limitOf(v uint64) uint64 {
	if v >= unlimited {
		return 0
	}
	return v
}

// memoryFrom converts the library's memory stats. The memory.stat keys
// differ by version; on v1 the total_* ones include child cgroups, which a
// pod's cgroup needs.
func memoryFrom(ms cgroups.MemoryStats, v2 bool) Memory {
	stat := func(v1Key, v2Key string) uint64 {
		if v2 {
			return ms.Stats[v2Key]
		}
		if v, ok := ms.Stats["total_"+v1Key]; ok {
			return v
		}
		return ms.Stats[v1Key]
	}
	local := func(v1Key, v2Key string) uint64 {
		if v2 {
			return ms.Stats[v2Key]
		}
		return ms.Stats[v1Key]
	}
	m := Memory{
		Usage:                ms.Usage.Usage,
		RSS:                  stat("rss", "anon"),
		Cache:                stat("cache", "file"),
		MappedFile:           stat("mapped_file", "file_mapped"),
		PageFaults:           stat("pgfault", "pgfault"),
		MajorPageFaults:      stat("pgmajfault", "pgmajfault"),
		LocalPageFaults:      local("pgfault", "pgfault"),
		LocalMajorPageFaults: local("pgmajfault", "pgmajfault"),
		Limit:                limitOf(ms.Usage.Limit),
		MaxUsage:             ms.Usage.MaxUsage,
		Failcnt:              ms.Usage.Failcnt,
	}
	m.WorkingSet = WorkingSet(m.Usage, stat("inactive_file", "inactive_file"))
	if v2 {
		m.SwapUsage, m.SwapLimit = ms.SwapOnlyUsage.Usage, limitOf(ms.SwapOnlyUsage.Limit)
		m.Kernel, m.HasKernel = v2Kernel(ms.Stats)
	} else {
		if ms.SwapUsage.Usage >= ms.Usage.Usage {
			// v1 accounts memory+swap together.
			m.SwapUsage = ms.SwapUsage.Usage - ms.Usage.Usage
			if l := limitOf(ms.SwapUsage.Limit); l > m.Limit && m.Limit > 0 {
				m.SwapLimit = l - m.Limit
			}
		}
		// The library leaves kmem at zero when the kernel lacks it;
		// readV1 clears HasKernel then.
		m.Kernel, m.HasKernel = ms.KernelUsage.Usage, true
		m.HasMaxUsage = true
	}
	return m
}

// v2Kernel is the kernel memory of a v2 memory.stat: its "kernel" entry
// (Linux 5.18+), or before that the sum of the parts that entry adds up.
func v2Kernel(st map[string]uint64) (uint64, bool) {
	if v, ok := st["kernel"]; ok {
		return v, true
	}
	var sum uint64
	found := false
	for _, k := range []string{"kernel_stack", "pagetables", "sec_pagetables", "percpu", "sock", "vmalloc", "slab"} {
		if v, ok := st[k]; ok {
			sum += v
			found = true
		}
	}
	return sum, found
}

// parseKeyValues parses a flat keyed file such as memory.events or
// memory.oom_control: one "key value" per line. Lines that do not parse
// are skipped: new kernels add keys, some with non-numeric values.
func parseKeyValues(data string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(data, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

func psiFrom(p *cgroups.PSIStats) *PSI {
	if p == nil {
		return nil
	}
	conv := func(d cgroups.PSIData) PSIData {
		// The kernel counts microseconds; the CRI wants nanoseconds.
		return PSIData{Total: d.Total * 1000, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &PSI{Some: conv(p.Some), Full: conv(p.Full)}
}
