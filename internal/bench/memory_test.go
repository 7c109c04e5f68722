package bench

import (
	"reflect"
	"testing"
)

func TestClassify(t *testing.T) {
	w := Workload{Command: []string{"sleep", "3600"}}
	tree := "/cradle-bench/containerd/pid-pod"
	in := func(pod string) []string { return []string{tree + "/pod" + pod + "/ctr"} }
	procs := []Proc{
		{PID: 1, Comm: "init", Cgroups: []string{"/"}},
		{PID: 100, PPID: 1, Comm: "containerd", Cgroups: []string{"/"}},
		// pod a: a shim (outside the pod's cgroup) with pause and sleep below it
		{PID: 200, PPID: 1, Comm: "containerd-shim", Cgroups: []string{"/"}},
		{PID: 201, PPID: 200, Comm: "pause", Cmdline: []string{"/pause"}, Cgroups: in("a")},
		{PID: 202, PPID: 200, Comm: "sleep", Cmdline: []string{"sleep", "3600"}, Cgroups: in("a")},
		// pod b: conmon-like monitors, one per container
		{PID: 300, PPID: 1, Comm: "conmon", Cgroups: []string{"/cradle"}},
		{PID: 301, PPID: 300, Comm: "sleep", Cmdline: []string{"sleep", "3600"}, Cgroups: in("b")},
		// pod c: the daemon is the direct parent: not overhead
		{PID: 401, PPID: 100, Comm: "sleep", Cmdline: []string{"sleep", "3600"}, Cgroups: in("c")},
		// another tree's pod
		{PID: 500, PPID: 1, Comm: "conmon", Cgroups: []string{"/"}},
		{PID: 501, PPID: 500, Comm: "sleep", Cmdline: []string{"sleep", "3600"}, Cgroups: []string{"/cradle-bench/cradle/pid-pod/podx/c"}},
	}
	over, n := Classify(procs, tree, 100, w.IsWorkload)
	var pids []int
	for _, p := range over {
		pids = append(pids, p.PID)
	}
	if want := []int{200, 201, 300}; !reflect.DeepEqual(pids, want) {
		t.Errorf("overhead %v, want %v", pids, want)
	}
	if n != 3 {
		t.Errorf("workloads %d, want 3", n)
	}
}

func TestMemResult(t *testing.T) {
	const mib = 1 << 20
	m := MemResult{
		Pods:       2,
		DaemonIdle: Mem{RSS: 40 * mib, PSS: 30 * mib},
		Daemon:     Mem{RSS: 44 * mib, PSS: 32 * mib},
		Overhead:   Mem{RSS: 20 * mib, PSS: 10 * mib},
		ByComm:     map[string]int{"pause": 2, "containerd-shim": 2},
	}
	if got := m.OverheadPerPod(); got != (Mem{RSS: 10 * mib, PSS: 5 * mib}) {
		t.Errorf("OverheadPerPod = %+v", got)
	}
	if got := m.DaemonGrowthPerPod(); got != (Mem{RSS: 2 * mib, PSS: 1 * mib}) {
		t.Errorf("DaemonGrowthPerPod = %+v", got)
	}
	if got := m.TotalPerPod(); got != (Mem{RSS: 12 * mib, PSS: 6 * mib}) {
		t.Errorf("TotalPerPod = %+v", got)
	}
	if got := m.ProcsPerPod(); got != "1 containerd-shim + 1 pause" {
		t.Errorf("ProcsPerPod = %q", got)
	}
	m.ByComm = map[string]int{"conmon": 3}
	if got := m.ProcsPerPod(); got != "1.5 conmon" {
		t.Errorf("ProcsPerPod = %q", got)
	}
	if (MemResult{}).OverheadPerPod() != (Mem{}) || (MemResult{}).ProcsPerPod() != "none" {
		t.Error("zero pods should give zero per pod")
	}
}
