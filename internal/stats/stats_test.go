package stats

import (
	"math"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

func TestNanoCores(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name      string
		prev, cur uint64
		window    time.Duration
		want      uint64
		wantOK    bool
	}{
		{"one core busy", 1e9, 3e9, 2 * time.Second, 1e9, true},
		{"half a core", 0, 5e8, time.Second, 5e8, true},
		{"idle", 7, 7, time.Second, 0, true},
		// 100 s of CPU in 10 s: delta*1e9 overflows uint64 in integers.
		{"large delta", 0, 100e9, 10 * time.Second, 10e9, true},
		{"counter reset", 5e9, 1e9, time.Second, 0, false},
		{"empty window", 1, 2, 0, 0, false},
		{"clock backwards", 1, 2, -time.Second, 0, false},
	}
	for _, c := range cases {
		got, ok := NanoCores(c.prev, c.cur, t0, t0.Add(c.window))
		if got != c.want || ok != c.wantOK {
			t.Errorf("%s: NanoCores = %d, %v; want %d, %v", c.name, got, ok, c.want, c.wantOK)
		}
	}
}

func TestWorkingSetAndAvailable(t *testing.T) {
	if got := WorkingSet(100, 30); got != 70 {
		t.Errorf("WorkingSet(100, 30) = %d", got)
	}
	if got := WorkingSet(30, 100); got != 0 {
		t.Errorf("WorkingSet must not underflow: %d", got)
	}
	if v, ok := Available(0, 10); ok {
		t.Errorf("unlimited must have no available bytes, got %d", v)
	}
	if v, ok := Available(100, 70); !ok || v != 30 {
		t.Errorf("Available(100, 70) = %d, %v", v, ok)
	}
	if v, ok := Available(100, 170); !ok || v != 0 {
		t.Errorf("Available over the limit = %d, %v", v, ok)
	}
}

func TestMemoryFromV1(t *testing.T) {
	ms := cgroups.MemoryStats{
		Usage:     cgroups.MemoryData{Usage: 1000, Limit: 9223372036854771712}, // v1 "no limit"
		SwapUsage: cgroups.MemoryData{Usage: 1200, Limit: 9223372036854771712},
		Stats: map[string]uint64{
			"rss": 1, "total_rss": 400, "total_cache": 500, "total_inactive_file": 300, "inactive_file": 1,
			"total_pgfault": 50, "total_pgmajfault": 5, "pgfault": 20, "pgmajfault": 2,
			"mapped_file": 3, "total_mapped_file": 30,
		},
	}
	ms.Usage.MaxUsage, ms.Usage.Failcnt, ms.KernelUsage.Usage = 1500, 4, 77
	m := memoryFrom(ms, false)
	want := Memory{
		Usage: 1000, WorkingSet: 700, RSS: 400, Cache: 500, MappedFile: 30, PageFaults: 50, MajorPageFaults: 5,
		LocalPageFaults: 20, LocalMajorPageFaults: 2, SwapUsage: 200,
		MaxUsage: 1500, HasMaxUsage: true, Failcnt: 4, Kernel: 77, HasKernel: true,
	}
	if m != want {
		t.Errorf("v1 memory = %+v, want %+v", m, want)
	}
	ms.Usage.Limit, ms.SwapUsage.Limit = 2000, 3000
	if m := memoryFrom(ms, false); m.Limit != 2000 || m.SwapLimit != 1000 {
		t.Errorf("v1 limits = %d, swap %d", m.Limit, m.SwapLimit)
	}
	delete(ms.Stats, "total_rss")
	if m := memoryFrom(ms, false); m.RSS != 1 {
		t.Errorf("v1 without total_* keys must fall back, RSS = %d", m.RSS)
	}
}

func TestMemoryFromV2(t *testing.T) {
	ms := cgroups.MemoryStats{
		Usage:         cgroups.MemoryData{Usage: 1000, Limit: math.MaxUint64},
		SwapOnlyUsage: cgroups.MemoryData{Usage: 10, Limit: 50},
		Stats: map[string]uint64{
			"anon": 400, "file": 500, "inactive_file": 1200, "pgfault": 9, "pgmajfault": 1,
			"file_mapped": 6, "kernel": 70, "kernel_stack": 1,
		},
	}
	ms.Usage.MaxUsage = 1800
	m := memoryFrom(ms, true)
	want := Memory{
		Usage: 1000, WorkingSet: 0, RSS: 400, Cache: 500, MappedFile: 6, PageFaults: 9, MajorPageFaults: 1,
		LocalPageFaults: 9, LocalMajorPageFaults: 1, SwapUsage: 10, SwapLimit: 50,
		MaxUsage: 1800, Kernel: 70, HasKernel: true, // readV2 sets HasMaxUsage from memory.peak
	}
	if m != want {
		t.Errorf("v2 memory = %+v, want %+v", m, want)
	}
	// Before Linux 5.18 memory.stat has no "kernel" entry, only its parts.
	delete(ms.Stats, "kernel")
	ms.Stats["slab"], ms.Stats["pagetables"], ms.Stats["sock"], ms.Stats["percpu"] = 10, 20, 30, 40
	if m := memoryFrom(ms, true); m.Kernel != 101 || !m.HasKernel {
		t.Errorf("v2 kernel from parts = %d, %v", m.Kernel, m.HasKernel)
	}
	if k, ok := v2Kernel(map[string]uint64{"anon": 1}); ok || k != 0 {
		t.Errorf("v2 kernel without any part = %d, %v", k, ok)
	}
}

func TestResolvePath(t *testing.T) {
	cases := map[string]string{
		"/cradle/cradle-abc":                       "/cradle/cradle-abc",
		"kubepods/pod1/cradle-abc":                 "/kubepods/pod1/cradle-abc",
		"kubepods-burstable-pod1.slice:cradle:abc": "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cradle-abc.scope",
		":cradle:abc":                              "/system.slice/cradle-abc.scope",
		"-.slice:cradle:abc":                       "/cradle-abc.scope",
		"kubepods-pod1.slice":                      "/kubepods.slice/kubepods-pod1.slice",
		"machine.slice:cradle:inner.slice":         "/machine.slice/inner.slice",
	}
	for in, want := range cases {
		if got := ResolvePath(in); got != want {
			t.Errorf("ResolvePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSumSamples(t *testing.T) {
	now := time.Now()
	a := &Sample{Cgroup: &Cgroup{CPU: 10, Processes: 2, Memory: Memory{Usage: 100, WorkingSet: 80, Limit: 1000}}, NanoCores: 5, HasNanoCores: true}
	b := &Sample{Cgroup: &Cgroup{CPU: 20, Processes: 1, Memory: Memory{Usage: 50, WorkingSet: 40, Limit: 500}}, NanoCores: 7, HasNanoCores: true}
	s := SumSamples(now, []*Sample{a, nil, {Layer: &Layer{}}, b})
	c := s.Cgroup
	if c.CPU != 30 || c.Processes != 3 || c.Memory.Usage != 150 || c.Memory.WorkingSet != 120 || c.Memory.Limit != 1500 {
		t.Errorf("sum = %+v", c)
	}
	if !s.HasNanoCores || s.NanoCores != 12 {
		t.Errorf("nano cores = %d, %v", s.NanoCores, s.HasNanoCores)
	}
	b.Cgroup.Memory.Limit, b.HasNanoCores = 0, false
	s = SumSamples(now, []*Sample{a, b})
	if s.Cgroup.Memory.Limit != 0 || s.HasNanoCores {
		t.Errorf("one unlimited container makes the pod unlimited (%d); one without nano cores hides them (%v)", s.Cgroup.Memory.Limit, s.HasNanoCores)
	}
	if s := SumSamples(now, nil); s.Cgroup != nil || s.HasNanoCores {
		t.Errorf("empty sum = %+v", s)
	}
}

func TestCachePut(t *testing.T) {
	var c Cache
	t0 := time.Now()
	first := c.Put("a", &Sample{Time: t0, Cgroup: &Cgroup{CPU: 1e9}})
	if first.HasNanoCores {
		t.Error("a first sample has no nano cores")
	}
	second := c.Put("a", &Sample{Time: t0.Add(2 * time.Second), Cgroup: &Cgroup{CPU: 2e9}})
	if !second.HasNanoCores || second.NanoCores != 5e8 {
		t.Errorf("second sample: %d, %v", second.NanoCores, second.HasNanoCores)
	}
	if got := c.Put("a", &Sample{Time: t0.Add(time.Second), Cgroup: &Cgroup{CPU: 9e9}}); got != second {
		t.Error("an older sample must not replace a newer one")
	}
	given := c.Put("a", &Sample{Time: t0.Add(3 * time.Second), Cgroup: &Cgroup{CPU: 3e9}, NanoCores: 42, HasNanoCores: true})
	if given.NanoCores != 42 {
		t.Errorf("nano cores given by the caller were replaced: %d", given.NanoCores)
	}
	c.Put("b", &Sample{Time: t0})
	c.Retain(func(k string) bool { return k == "b" })
	if c.Get("a") != nil || c.Get("b") == nil {
		t.Error("Retain kept the wrong keys")
	}
}

func TestFilter(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	cases := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{ID: "abc"}, true},
		{Filter{ID: "abcdef"}, true},
		{Filter{ID: "abd"}, false},
		{Filter{PodSandboxID: "p1"}, true},
		{Filter{PodSandboxID: "p2"}, false},
		{Filter{Labels: map[string]string{"app": "web"}}, true},
		{Filter{Labels: map[string]string{"app": "web", "tier": "back"}}, false},
		{Filter{Labels: map[string]string{"missing": ""}}, false},
		{Filter{ID: "abc", PodSandboxID: "p1", Labels: map[string]string{"tier": "front"}}, true},
	}
	for _, c := range cases {
		if got := c.f.Match("abcdef", "p1xyz", labels); got != c.want {
			t.Errorf("%+v.Match = %v, want %v", c.f, got, c.want)
		}
	}
}
