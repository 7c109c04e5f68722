package stats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
)

// Only what the CRI reports: reading every controller costs more syscalls.
var statsOptions = &cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids}

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
	return cgroupFrom(st, true), nil
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
	for _, sub := range []string{"cpu", "cpuacct", "memory", "pids"} {
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
	if _, ok := paths["pids"]; !ok {
		pids, err := cgroups.GetAllPids(memPath)
		if err != nil {
			return nil, fmt.Errorf("list processes of cgroup %s: %w", memPath, err)
		}
		cg.Processes = uint64(len(pids))
	}
	return cg, nil
}

func cgroupFrom(st *cgroups.Stats, v2 bool) *Cgroup {
	u := st.CpuStats.CpuUsage
	return &Cgroup{
		CPU: u.TotalUsage, CPUUser: u.UsageInUsermode, CPUSystem: u.UsageInKernelmode,
		Memory:    memoryFrom(st.MemoryStats, v2),
		Processes: st.PidsStats.Current,
		CPUPSI:    psiFrom(st.CpuStats.PSI), MemoryPSI: psiFrom(st.MemoryStats.PSI),
	}
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

func expandSlice(slice string) string {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "" || name == "-" {
		return "/"
	}
	path := "/"
	prefix := ""
	for _, comp := range strings.Split(name, "-") {
		prefix += comp
		path = filepath.Join(path, prefix+".slice")
		prefix += "-"
	}
	return path
}

// Sum adds up the cgroups of a pod's containers, for a pod without a cgroup
// of its own. The memory limit adds up only if every container has one.
// Pressure is not additive and is left out. Nil entries are skipped; the
// result is nil if all are.
func Sum(cgs []*Cgroup) *Cgroup {
	var out *Cgroup
	limited := true
	for _, c := range cgs {
		if c == nil {
			continue
		}
		if out == nil {
			out = &Cgroup{}
		}
		out.CPU += c.CPU
		out.CPUUser += c.CPUUser
		out.CPUSystem += c.CPUSystem
		out.Processes += c.Processes
		m, t := &out.Memory, c.Memory
		m.Usage += t.Usage
		m.WorkingSet += t.WorkingSet
		m.RSS += t.RSS
		m.Cache += t.Cache
		m.PageFaults += t.PageFaults
		m.MajorPageFaults += t.MajorPageFaults
		m.SwapUsage += t.SwapUsage
		m.Limit += t.Limit
		limited = limited && t.Limit > 0
	}
	if out != nil && !limited {
		out.Memory.Limit = 0
	}
	return out
}
