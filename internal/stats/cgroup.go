package stats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups/systemd"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
)

// What the CRI stats and metrics report; RDMA, misc and cpuset are left
// out: reading every controller costs more syscalls.
var statsOptions = &cgroups.StatsOptions{
	Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO | cgroups.HugeTLB,
}

// v1Mounts maps each v1 controller to its mountpoint. Mounts are read once:
// cgroup hierarchies are not remounted while the daemon runs.
var v1Mounts = sync.OnceValues(func() (map[string]string, error) {
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		return nil, fmt.Errorf("find cgroup v1 mounts: %w", err)
	}
	out := map[string]string{}
	for _, m := range mounts {
		for _, s := range m.Subsystems {
			out[s] = m.Mountpoint
		}
	}
	return out, nil
})

// ReadCgroup reads the cgroup that an OCI spec names in linux.cgroupsPath,
// on cgroup v2 or v1 (also the hybrid layout, whose v2 tree has no
// controllers). A cgroup that does not exist is an error wrapping
// fs.ErrNotExist.
func ReadCgroup(cgroupsPath string) (*Cgroup, error) {
	dir := ResolvePath(cgroupsPath)
	if cgroups.IsCgroup2UnifiedMode() {
		return readV2(filepath.Join(fs2.UnifiedMountpoint, dir))
	}
	return readV1(dir)
}

func readV2(path string) (*Cgroup, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, path)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	st, err := m.Stats(statsOptions)
	if err != nil {
		return nil, fmt.Errorf("read cgroup %s: %w", path, err)
	}
	cg := cgroupFrom(st, true)
	cg.HasPidsLimit = cgroups.PathExists(filepath.Join(path, "pids.max"))
	cg.Memory.HasMaxUsage = cgroups.PathExists(filepath.Join(path, "memory.peak"))
	if data, err := cgroups.ReadFile(path, "memory.events"); err == nil {
		ev := parseKeyValues(data)
		cg.Memory.Failcnt = ev["max"]
		cg.Memory.OOMKills, cg.Memory.HasOOMKills = ev["oom_kill"]
	}
	cg.Spec = readSpecV2(path)
	readProcesses(cg, path)
	return cg, nil
}

func readV1(dir string) (*Cgroup, error) {
	mounts, err := v1Mounts()
	if err != nil {
		return nil, err
	}
	memPath, ok := mounts["memory"]
	if !ok {
		return nil, errors.New("cgroup v1 memory controller is not mounted")
	}
	memPath = filepath.Join(memPath, dir)
	if _, err := os.Stat(memPath); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", memPath, err)
	}
	paths := map[string]string{}
	for _, sub := range []string{"cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb"} {
		// A controller without this cgroup (e.g. pids on an old runc) is
		// skipped rather than failing the whole reading.
		if mnt, ok := mounts[sub]; ok && cgroups.PathExists(filepath.Join(mnt, dir)) {
			paths[sub] = filepath.Join(mnt, dir)
		}
	}
	m, err := fs.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	st, err := m.Stats(statsOptions)
	if err != nil {
		return nil, fmt.Errorf("read cgroup %s: %w", dir, err)
	}
	cg := cgroupFrom(st, false)
	_, cg.HasPidsLimit = paths["pids"]
	cg.Memory.HasKernel = cgroups.PathExists(filepath.Join(memPath, "memory.kmem.usage_in_bytes"))
	if data, err := cgroups.ReadFile(memPath, "memory.oom_control"); err == nil {
		cg.Memory.OOMKills, cg.Memory.HasOOMKills = parseKeyValues(data)["oom_kill"]
	}
	if cpu, ok := paths["cpu"]; ok {
		cg.Spec = readSpecV1(cpu, memPath)
	}
	procs := memPath
	if p, ok := paths["pids"]; ok {
		procs = p
	}
	if err := readProcesses(cg, procs); err != nil && !cg.HasPidsLimit {
		// Without the pids controller the process count has no other
		// source.
		return nil, fmt.Errorf("list processes of cgroup %s: %w", procs, err)
	}
	return cg, nil
}

// readProcesses lists the processes of the cgroup at dir and its
// descendants, counts them and reads their threads and file descriptors.
// On failure the counts from the pids controller stay.
func readProcesses(cg *Cgroup, dir string) error {
	pids, err := cgroups.GetAllPids(dir)
	if err != nil {
		return err
	}
	cg.Processes = uint64(len(pids))
	p := ReadProcs("/proc", pids)
	cg.Procs = &p
	return nil
}

func cgroupFrom(st *cgroups.Stats, v2 bool) *Cgroup {
	u := st.CpuStats.CpuUsage
	t := st.CpuStats.ThrottlingData
	cg := &Cgroup{
		CPU: u.TotalUsage, CPUUser: u.UsageInUsermode, CPUSystem: u.UsageInKernelmode,
		Throttling: Throttling{Periods: t.Periods, ThrottledPeriods: t.ThrottledPeriods, ThrottledTime: t.ThrottledTime},
		Memory:     memoryFrom(st.MemoryStats, v2),
		Processes:  st.PidsStats.Current,
		PidsLimit:  st.PidsStats.Limit,
		IOBytes:    ioEntries(st.BlkioStats.IoServiceBytesRecursive),
		IOOps:      ioEntries(st.BlkioStats.IoServicedRecursive),
		CPUPSI:     psiFrom(st.CpuStats.PSI), MemoryPSI: psiFrom(st.MemoryStats.PSI), IOPSI: psiFrom(st.BlkioStats.PSI),
	}
	for size, h := range st.HugetlbStats {
		cg.Hugetlb = append(cg.Hugetlb, Hugetlb{PageSize: size, Usage: h.Usage, MaxUsage: h.MaxUsage, HasMaxUsage: !v2})
	}
	sort.Slice(cg.Hugetlb, func(i, j int) bool { return cg.Hugetlb[i].PageSize < cg.Hugetlb[j].PageSize })
	return cg
}

// ResolvePath turns a cgroupsPath into a path under a hierarchy's root.
// Besides cgroupfs paths it understands runc's systemd form
// "slice:prefix:name" and a bare slice name, where a-b.slice nests as
// /a.slice/a-b.slice.
func ResolvePath(cgroupsPath string) string {
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		if strings.HasSuffix(cgroupsPath, ".slice") && !strings.Contains(cgroupsPath, "/") {
			return expandSlice(cgroupsPath) // a systemd pod parent
		}
		return filepath.Join("/", cgroupsPath)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		unit = prefix + "-" + name + ".scope"
	}
	return filepath.Join(expandSlice(slice), unit)
}

// expandSlice nests a systemd slice as its parents: a-b.slice is
// /a.slice/a-b.slice. A name systemd would refuse is kept as it is.
func expandSlice(slice string) string {
	p, err := systemd.ExpandSlice(slice)
	if err != nil {
		return filepath.Join("/", slice)
	}
	return p
}

// Sum adds up the cgroups of a pod's containers, for a pod without a cgroup
// of its own. The memory and pids limits add up only if every container
// has one. Pressure, peaks and the spec are not additive and are left
// out. Nil entries are skipped; the result is nil if all are.
func Sum(cgs []*Cgroup) *Cgroup {
	var out *Cgroup
	limited, pidsLimited, procs := true, true, true
	kernel, oom := true, true
	for _, c := range cgs {
		if c == nil {
			continue
		}
		if out == nil {
			out = &Cgroup{HasPidsLimit: true, Procs: &Procs{}}
		}
		out.CPU += c.CPU
		out.CPUUser += c.CPUUser
		out.CPUSystem += c.CPUSystem
		out.Throttling.Periods += c.Throttling.Periods
		out.Throttling.ThrottledPeriods += c.Throttling.ThrottledPeriods
		out.Throttling.ThrottledTime += c.Throttling.ThrottledTime
		out.Processes += c.Processes
		out.PidsLimit += c.PidsLimit
		pidsLimited = pidsLimited && c.HasPidsLimit && c.PidsLimit > 0
		if c.Procs != nil {
			out.Procs.FileDescriptors += c.Procs.FileDescriptors
			out.Procs.Sockets += c.Procs.Sockets
			out.Procs.Threads += c.Procs.Threads
		} else {
			procs = false
		}
		m, t := &out.Memory, c.Memory
		m.Usage += t.Usage
		m.WorkingSet += t.WorkingSet
		m.RSS += t.RSS
		m.Cache += t.Cache
		m.MappedFile += t.MappedFile
		m.PageFaults += t.PageFaults
		m.MajorPageFaults += t.MajorPageFaults
		m.LocalPageFaults += t.LocalPageFaults
		m.LocalMajorPageFaults += t.LocalMajorPageFaults
		m.SwapUsage += t.SwapUsage
		m.Failcnt += t.Failcnt
		m.Kernel += t.Kernel
		m.OOMKills += t.OOMKills
		kernel = kernel && t.HasKernel
		oom = oom && t.HasOOMKills
		m.Limit += t.Limit
		limited = limited && t.Limit > 0
		out.IOBytes = addIO(out.IOBytes, c.IOBytes)
		out.IOOps = addIO(out.IOOps, c.IOOps)
		out.Hugetlb = addHugetlb(out.Hugetlb, c.Hugetlb)
	}
	if out == nil {
		return nil
	}
	if !limited {
		out.Memory.Limit = 0
	}
	if !pidsLimited {
		out.PidsLimit, out.HasPidsLimit = 0, false
	}
	if !procs {
		out.Procs = nil
	}
	out.Memory.HasKernel, out.Memory.HasOOMKills = kernel, oom
	return out
}
