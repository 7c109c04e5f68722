package bench

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// MemResult is the memory of one runtime with Pods pods running.
type MemResult struct {
	Pods      int `json:"pods"`
	Workloads int `json:"workload_processes"` // container main processes found; should equal Pods
	// Daemon is the daemon with the pods running; DaemonIdle is the same
	// daemon just before they were started, with no pod of the run.
	Daemon     Mem `json:"daemon"`
	DaemonIdle Mem `json:"daemon_idle"`
	// Overhead is the sum over the per-pod processes that are not the
	// workload: monitors (conmon, containerd-shim) and infra/pause.
	Overhead      Mem            `json:"overhead"`
	OverheadProcs []Proc         `json:"overhead_processes"`
	ByComm        map[string]int `json:"overhead_by_comm"`
}

// OverheadPerPod is the per-pod processes' memory divided by the pods.
func (m MemResult) OverheadPerPod() Mem { return m.perPod(m.Overhead) }

// DaemonGrowthPerPod is the daemon's growth over idle divided by the pods.
func (m MemResult) DaemonGrowthPerPod() Mem {
	return m.perPod(Mem{RSS: m.Daemon.RSS - m.DaemonIdle.RSS, PSS: m.Daemon.PSS - m.DaemonIdle.PSS})
}

// TotalPerPod is what a pod costs beyond its workload: its processes plus
// the daemon's growth.
func (m MemResult) TotalPerPod() Mem { return m.OverheadPerPod().Add(m.DaemonGrowthPerPod()) }

func (m MemResult) perPod(x Mem) Mem {
	if m.Pods == 0 {
		return Mem{}
	}
	return Mem{RSS: x.RSS / int64(m.Pods), PSS: x.PSS / int64(m.Pods)}
}

// ProcsPerPod describes the overhead processes per pod, e.g.
// "1 containerd-shim + 1 pause".
func (m MemResult) ProcsPerPod() string {
	if m.Pods == 0 || len(m.ByComm) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m.ByComm))
	for n := range m.ByComm {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		c := m.ByComm[n]
		if c%m.Pods == 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c/m.Pods, n))
		} else {
			parts = append(parts, fmt.Sprintf("%.1f %s", float64(c)/float64(m.Pods), n))
		}
	}
	return strings.Join(parts, " + ")
}

// Classify picks, from a process table, the processes that exist because
// of the pods below cgroupTree: every process in those cgroups that is not
// a workload process (pause, infra), plus the parent of each pod process
// that lives outside them (the monitor: conmon, containerd-shim), except
// the daemon itself and PID 1. It also counts the workload processes.
func Classify(procs []Proc, cgroupTree string, daemonPID int, isWorkload func(Proc) bool) (overhead []Proc, workloads int) {
	byPID := make(map[int]Proc, len(procs))
	inPod := make(map[int]bool)
	for _, p := range procs {
		byPID[p.PID] = p
		if InCgroupTree(p.Cgroups, cgroupTree) {
			inPod[p.PID] = true
		}
	}
	picked := make(map[int]bool)
	for pid := range inPod {
		p := byPID[pid]
		if isWorkload(p) {
			workloads++
		} else {
			picked[pid] = true
		}
		if pp := p.PPID; pp > 1 && pp != daemonPID && !inPod[pp] {
			if _, ok := byPID[pp]; ok {
				picked[pp] = true
			}
		}
	}
	for pid := range picked {
		overhead = append(overhead, byPID[pid])
	}
	slices.SortFunc(overhead, func(a, b Proc) int { return a.PID - b.PID })
	return overhead, workloads
}

// snapshot measures the daemon and the overhead processes of the pods
// below cgroupTree.
func snapshot(fs procFS, daemonPID int, cgroupTree string, isWorkload func(Proc) bool) (MemResult, error) {
	var r MemResult
	procs, err := fs.all()
	if err != nil {
		return r, err
	}
	if r.Daemon, err = fs.mem(daemonPID); err != nil {
		return r, fmt.Errorf("daemon memory: %w", err)
	}
	over, n := Classify(procs, cgroupTree, daemonPID, isWorkload)
	r.Workloads = n
	r.ByComm = make(map[string]int)
	for _, p := range over {
		if p.Mem, err = fs.mem(p.PID); err != nil {
			return r, fmt.Errorf("overhead process %s: %w", p.Comm, err)
		}
		r.Overhead = r.Overhead.Add(p.Mem)
		r.ByComm[p.Comm]++
		r.OverheadProcs = append(r.OverheadProcs, p)
	}
	return r, nil
}
