package stats

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

// The metrics critest v1.37 expects (pod.go, expectedMetricDescriptorNames).
var critestMetrics = []string{
	"container_blkio_device_usage_total", "container_cpu_cfs_periods_total",
	"container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
	"container_cpu_system_seconds_total", "container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
	"container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total", "container_fs_limit_bytes",
	"container_fs_reads_bytes_total", "container_fs_reads_total", "container_fs_usage_bytes",
	"container_fs_writes_bytes_total", "container_fs_writes_total", "container_hugetlb_max_usage_bytes",
	"container_hugetlb_usage_bytes", "container_last_seen", "container_memory_cache", "container_memory_failcnt",
	"container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
	"container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap",
	"container_memory_usage_bytes", "container_memory_working_set_bytes", "container_network_receive_bytes_total",
	"container_network_receive_errors_total", "container_network_receive_packets_dropped_total",
	"container_network_receive_packets_total", "container_network_transmit_bytes_total",
	"container_network_transmit_errors_total", "container_network_transmit_packets_dropped_total",
	"container_network_transmit_packets_total", "container_oom_events_total",
	"container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
	"container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
	"container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
	"container_processes", "container_sockets", "container_spec_cpu_period", "container_spec_cpu_quota",
	"container_spec_cpu_shares", "container_spec_memory_limit_bytes",
	"container_spec_memory_reservation_limit_bytes", "container_spec_memory_swap_limit_bytes",
	"container_start_time_seconds", "container_threads", "container_threads_max", "container_ulimits_soft",
}

func fullSample() *Sample {
	psi := func(some, full uint64) *PSI { return &PSI{Some: PSIData{Total: some}, Full: PSIData{Total: full}} }
	return &Sample{
		Time: time.Unix(1000, 0),
		Cgroup: &Cgroup{
			CPU: 7e9, CPUUser: 5e9, CPUSystem: 2e9,
			Throttling: Throttling{Periods: 40, ThrottledPeriods: 3, ThrottledTime: 2500e6},
			Memory: Memory{
				Usage: 100, WorkingSet: 90, RSS: 50, Cache: 40, MappedFile: 8, PageFaults: 30, MajorPageFaults: 3,
				LocalPageFaults: 20, LocalMajorPageFaults: 2, Limit: 64 << 20, SwapUsage: 1,
				MaxUsage: 120, HasMaxUsage: true, Failcnt: 6, Kernel: 11, HasKernel: true, OOMKills: 1, HasOOMKills: true,
			},
			Processes: 2, PidsLimit: 100, HasPidsLimit: true,
			Procs: &Procs{FileDescriptors: 9, Sockets: 1, Threads: 4},
			Spec:  &Spec{CPUShares: 1024, CPUPeriod: 100000, CPUQuota: 20000, MemoryReservation: 5, MemorySwapLimit: 64 << 20},
			IOBytes: []IOEntry{
				{Major: 8, Minor: 0, Device: "/dev/sda", Op: "Read", Value: 4096},
				{Major: 8, Minor: 0, Device: "/dev/sda", Op: "Write", Value: 8192},
			},
			IOOps: []IOEntry{
				{Major: 8, Minor: 0, Device: "/dev/sda", Op: "Read", Value: 1},
				{Major: 8, Minor: 0, Device: "/dev/sda", Op: "Write", Value: 2},
			},
			Hugetlb: []Hugetlb{{PageSize: "2MB", Usage: 2 << 20, MaxUsage: 4 << 20, HasMaxUsage: true}},
			CPUPSI:  psi(3e9, 1e9), MemoryPSI: psi(4e9, 2e9), IOPSI: psi(5e9, 3e9),
		},
		Layer:   &Layer{Bytes: 4096, Inodes: 3, FS: &FsInfo{Device: "/dev/vda1", Capacity: 1 << 30, InodesTotal: 1000, InodesFree: 600}},
		Network: []Interface{{Name: "eth0", RxBytes: 1, RxErrors: 2, RxPackets: 3, RxDropped: 4, TxBytes: 5, TxErrors: 6, TxPackets: 7, TxDropped: 8}},
		Ulimits: []Ulimit{{Name: "max_open_files", Soft: 1024, Hard: 4096}, {Name: "max_cpu_time", Soft: math.MaxUint64, Hard: math.MaxUint64}},
	}
}

// byLabels indexes metrics as name{key=value,...} -> value.
func byLabels(t *testing.T, l Labels, started time.Time, s *Sample) map[string]uint64 {
	t.Helper()
	keys := map[string][]string{}
	for _, d := range Descriptors() {
		keys[d.GetName()] = d.GetLabelKeys()
	}
	out := map[string]uint64{}
	for _, m := range Metrics(l, started, s) {
		k := keys[m.GetName()]
		if len(k) != len(m.GetLabelValues()) {
			t.Fatalf("%s: values %v for keys %v", m.GetName(), m.GetLabelValues(), k)
		}
		var parts []string
		for i, key := range k {
			if key == "container" || key == "id" || key == "image" || key == "name" || key == "namespace" || key == "pod" {
				continue
			}
			parts = append(parts, key+"="+m.GetLabelValues()[i])
		}
		name := m.GetName() + "{" + strings.Join(parts, ",") + "}"
		if _, dup := out[name]; dup {
			t.Errorf("duplicate series %s", name)
		}
		out[name] = m.GetValue().GetValue()
	}
	return out
}

func TestDescriptorsCoverCritest(t *testing.T) {
	descs := map[string]bool{}
	for _, d := range Descriptors() {
		if descs[d.GetName()] {
			t.Errorf("duplicate descriptor %s", d.GetName())
		}
		descs[d.GetName()] = true
		if d.GetHelp() == "" || len(d.GetLabelKeys()) == 0 {
			t.Errorf("%s: help %q, label keys %v", d.GetName(), d.GetHelp(), d.GetLabelKeys())
		}
		for i := 1; i < len(d.GetLabelKeys()); i++ {
			if d.GetLabelKeys()[i-1] >= d.GetLabelKeys()[i] {
				t.Errorf("%s: label keys not sorted: %v", d.GetName(), d.GetLabelKeys())
			}
		}
	}
	for _, name := range critestMetrics {
		if !descs[name] {
			t.Errorf("no descriptor for %s", name)
		}
	}
}

func TestMetricsOfFullSample(t *testing.T) {
	started := time.Unix(900, 0)
	got := byLabels(t, Labels{Container: "app", ID: "c1", Image: "busybox", Name: "k8s_app", Namespace: "ns", Pod: "p"}, started, fullSample())
	found := map[string]bool{}
	for k := range got {
		found[k[:strings.Index(k, "{")]] = true
	}
	for _, name := range critestMetrics {
		if !found[name] {
			t.Errorf("no value for %s", name)
		}
	}
	want := map[string]uint64{
		"container_last_seen{}":                                                               1000,
		"container_start_time_seconds{}":                                                      900,
		"container_cpu_usage_seconds_total{cpu=total}":                                        7,
		"container_cpu_user_seconds_total{}":                                                  5,
		"container_cpu_system_seconds_total{}":                                                2,
		"container_cpu_cfs_periods_total{}":                                                   40,
		"container_cpu_cfs_throttled_periods_total{}":                                         3,
		"container_cpu_cfs_throttled_seconds_total{}":                                         2,
		"container_memory_mapped_file{}":                                                      8,
		"container_memory_kernel_usage{}":                                                     11,
		"container_memory_max_usage_bytes{}":                                                  120,
		"container_memory_failcnt{}":                                                          6,
		"container_memory_failures_total{failure_type=pgfault,scope=container}":               20,
		"container_memory_failures_total{failure_type=pgmajfault,scope=container}":            2,
		"container_memory_failures_total{failure_type=pgfault,scope=hierarchy}":               30,
		"container_memory_failures_total{failure_type=pgmajfault,scope=hierarchy}":            3,
		"container_oom_events_total{}":                                                        1,
		"container_spec_cpu_period{}":                                                         100000,
		"container_spec_cpu_quota{}":                                                          20000,
		"container_spec_cpu_shares{}":                                                         1024,
		"container_spec_memory_limit_bytes{}":                                                 64 << 20,
		"container_spec_memory_reservation_limit_bytes{}":                                     5,
		"container_spec_memory_swap_limit_bytes{}":                                            64 << 20,
		"container_processes{}":                                                               2,
		"container_threads{}":                                                                 4,
		"container_threads_max{}":                                                             100,
		"container_file_descriptors{}":                                                        9,
		"container_sockets{}":                                                                 1,
		"container_ulimits_soft{ulimit=max_open_files}":                                       1024,
		"container_ulimits_soft{ulimit=max_cpu_time}":                                         math.MaxUint64,
		"container_fs_usage_bytes{device=/dev/vda1}":                                          4096,
		"container_fs_limit_bytes{device=/dev/vda1}":                                          1 << 30,
		"container_fs_inodes_total{device=/dev/vda1}":                                         1000,
		"container_fs_inodes_free{device=/dev/vda1}":                                          600,
		"container_fs_reads_bytes_total{device=/dev/sda}":                                     4096,
		"container_fs_writes_bytes_total{device=/dev/sda}":                                    8192,
		"container_fs_reads_total{device=/dev/sda}":                                           1,
		"container_fs_writes_total{device=/dev/sda}":                                          2,
		"container_blkio_device_usage_total{device=/dev/sda,major=8,minor=0,operation=Read}":  4096,
		"container_blkio_device_usage_total{device=/dev/sda,major=8,minor=0,operation=Write}": 8192,
		"container_hugetlb_usage_bytes{pagesize=2MB}":                                         2 << 20,
		"container_hugetlb_max_usage_bytes{pagesize=2MB}":                                     4 << 20,
		"container_network_receive_bytes_total{interface=eth0}":                               1,
		"container_network_receive_errors_total{interface=eth0}":                              2,
		"container_network_receive_packets_total{interface=eth0}":                             3,
		"container_network_receive_packets_dropped_total{interface=eth0}":                     4,
		"container_network_transmit_bytes_total{interface=eth0}":                              5,
		"container_network_transmit_errors_total{interface=eth0}":                             6,
		"container_network_transmit_packets_total{interface=eth0}":                            7,
		"container_network_transmit_packets_dropped_total{interface=eth0}":                    8,
		"container_pressure_cpu_waiting_seconds_total{}":                                      3,
		"container_pressure_cpu_stalled_seconds_total{}":                                      1,
		"container_pressure_memory_waiting_seconds_total{}":                                   4,
		"container_pressure_memory_stalled_seconds_total{}":                                   2,
		"container_pressure_io_waiting_seconds_total{}":                                       5,
		"container_pressure_io_stalled_seconds_total{}":                                       3,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %d (present %v), want %d", k, g, ok, v)
		}
	}
}

// Base labels land under their keys whatever the metric's own keys are.
func TestMetricLabelPlacement(t *testing.T) {
	keys := map[string][]string{}
	for _, d := range Descriptors() {
		keys[d.GetName()] = d.GetLabelKeys()
	}
	l := Labels{Container: "app", ID: "c1", Image: "img", Name: "nm", Namespace: "ns", Pod: "pod"}
	for _, m := range Metrics(l, time.Unix(1, 0), fullSample()) {
		lv := map[string]string{}
		for i, k := range keys[m.GetName()] {
			lv[k] = m.GetLabelValues()[i]
		}
		if lv["container"] != "app" || lv["id"] != "c1" || lv["image"] != "img" || lv["name"] != "nm" || lv["namespace"] != "ns" || lv["pod"] != "pod" {
			t.Errorf("%s: labels %v", m.GetName(), lv)
		}
		if m.GetName() == "container_blkio_device_usage_total" && (lv["device"] != "/dev/sda" || lv["major"] != "8" || lv["minor"] != "0") {
			t.Errorf("blkio labels %v", lv)
		}
	}
}

// What a reading lacks is left out rather than reported as zero.
func TestMetricsLeaveOutUnknown(t *testing.T) {
	s := fullSample()
	c := s.Cgroup
	c.Memory.HasKernel, c.Memory.HasMaxUsage, c.Memory.HasOOMKills, c.HasPidsLimit = false, false, false, false
	c.Procs, c.Spec, c.IOBytes, c.IOOps, c.Hugetlb, c.CPUPSI, c.MemoryPSI, c.IOPSI = nil, nil, nil, nil, nil, nil, nil, nil
	c.Throttling = Throttling{}
	s.Layer.FS, s.Ulimits, s.Network = nil, nil, nil
	got := byLabels(t, Labels{}, time.Time{}, s)
	for k := range got {
		name := k[:strings.Index(k, "{")]
		switch name {
		case "container_last_seen", "container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
			"container_cpu_system_seconds_total", "container_memory_usage_bytes", "container_memory_working_set_bytes",
			"container_memory_rss", "container_memory_cache", "container_memory_swap", "container_memory_mapped_file",
			"container_memory_failcnt", "container_memory_failures_total", "container_spec_memory_limit_bytes",
			"container_processes", "container_fs_usage_bytes":
		default:
			t.Errorf("unexpected %s = %d", k, got[k])
		}
	}
	if got["container_fs_usage_bytes{device=}"] != 4096 {
		t.Errorf("fs usage without a known device: %v", got)
	}
	// No quota: CFS counters stay out as cadvisor leaves them, and so does
	// the quota itself; a quota makes them count even before a period ends.
	s = fullSample()
	s.Cgroup.Spec.CPUQuota, s.Cgroup.Throttling = 0, Throttling{}
	got = byLabels(t, Labels{}, time.Time{}, s)
	if _, ok := got["container_cpu_cfs_periods_total{}"]; ok {
		t.Error("CFS periods without a quota")
	}
	if _, ok := got["container_spec_cpu_quota{}"]; ok {
		t.Error("a quota of 0 is no quota")
	}
	s.Cgroup.Spec.CPUQuota = 50000
	if got = byLabels(t, Labels{}, time.Time{}, s); got["container_cpu_cfs_periods_total{}"] != 0 {
		t.Errorf("CFS periods with a quota: %v", got)
	}
	if _, ok := got["container_cpu_cfs_periods_total{}"]; !ok {
		t.Error("no CFS periods with a quota")
	}
	if len(Metrics(Labels{}, time.Time{}, &Sample{Time: time.Unix(1, 0)})) != 1 {
		t.Error("an empty sample has only last_seen")
	}
}

func TestParseLimits(t *testing.T) {
	data := `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max open files            1024                 1048576              files     
Max nice priority         0                    0                    
`
	got, err := ParseLimits(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ulimit{
		{"max_cpu_time", math.MaxUint64, math.MaxUint64},
		{"max_stack_size", 8388608, math.MaxUint64},
		{"max_open_files", 1024, 1048576},
		{"max_nice_priority", 0, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLimits = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "no header\nMax x 1 2\n", "Limit                     Soft Limit\nMax open files            many   1 files\n"} {
		if _, err := ParseLimits(bad); err == nil {
			t.Errorf("ParseLimits(%q) succeeded", bad)
		}
	}
	own, err := ReadUlimits(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var nofile *Ulimit
	for i := range own {
		if own[i].Name == "max_open_files" {
			nofile = &own[i]
		}
	}
	if nofile == nil || nofile.Soft == 0 || nofile.Soft > nofile.Hard {
		t.Errorf("own limits: %+v", own)
	}
}

func TestReadProcs(t *testing.T) {
	root := t.TempDir()
	mk := func(pid, threads string, fds map[string]string) {
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		// /proc/<pid>/stat: num_threads is field 20; the rest are zeros.
		fields := make([]string, 50)
		for i := range fields {
			fields[i] = "0"
		}
		fields[0], fields[17] = "S", threads
		stat := pid + " (sh) " + strings.Join(fields, " ") + "\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		for fd, target := range fds {
			if err := os.Symlink(target, filepath.Join(dir, "fd", fd)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("10", "1", map[string]string{"0": "/dev/null", "1": "pipe:[5]", "2": "socket:[77]"})
	mk("11", "3", map[string]string{"0": "/dev/null", "3": "socket:[78]", "4": "socket:[79]", "5": "anon_inode:[eventfd]"})
	// 12 exited between listing and reading.
	got := ReadProcs(root, []int{10, 11, 12})
	if want := (Procs{FileDescriptors: 7, Sockets: 3, Threads: 4}); got != want {
		t.Errorf("ReadProcs = %+v, want %+v", got, want)
	}
	self := ReadProcs("/proc", []int{os.Getpid()})
	if self.Threads == 0 || self.FileDescriptors < 3 {
		t.Errorf("own process: %+v", self)
	}
}

func TestParseKeyValues(t *testing.T) {
	got := parseKeyValues("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nbogus\nname text\n")
	if got["oom_kill"] != 3 || len(got) != 3 {
		t.Errorf("oom_control = %v", got)
	}
	ev := parseKeyValues("low 0\nhigh 1\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
	if ev["max"] != 12 || ev["oom_kill"] != 2 {
		t.Errorf("memory.events = %v", ev)
	}
}

func TestParseCPUMax(t *testing.T) {
	for in, want := range map[string][2]uint64{
		"max 100000\n":   {0, 100000},
		"20000 100000\n": {20000, 100000},
		"":               {0, 0},
	} {
		if q, p := parseCPUMax(in); q != want[0] || p != want[1] {
			t.Errorf("parseCPUMax(%q) = %d, %d; want %v", in, q, p, want)
		}
	}
}

func TestSharesFromWeight(t *testing.T) {
	// Exact where the forward conversion is.
	for _, shares := range []uint64{2, 1024, 262144} {
		if got := SharesFromWeight(cgroups.ConvertCPUSharesToCgroupV2Value(shares)); got != shares {
			t.Errorf("shares %d -> weight -> %d", shares, got)
		}
	}
	// Elsewhere the largest shares of the weight: converting back gives
	// the same weight, and one share more a higher one.
	for w := uint64(1); w <= 10000; w++ {
		s := SharesFromWeight(w)
		if back := cgroups.ConvertCPUSharesToCgroupV2Value(s); back != w {
			t.Fatalf("weight %d -> shares %d -> weight %d", w, s, back)
		}
		if s < 262144 && cgroups.ConvertCPUSharesToCgroupV2Value(s+1) == w {
			t.Fatalf("weight %d -> shares %d, not the largest", w, s)
		}
	}
	if SharesFromWeight(0) != 0 {
		t.Error("no weight, no shares")
	}
}

func TestReadFsInfo(t *testing.T) {
	for _, p := range []string{t.TempDir(), "/proc"} {
		fi, err := ReadFsInfo(p)
		if err != nil {
			t.Fatal(err)
		}
		if p == "/proc" && fi.Device != "proc" {
			t.Errorf("/proc's device = %q, want its mount source proc", fi.Device)
		}
		if p != "/proc" && (fi.Device == "" || fi.Capacity == 0 || fi.InodesTotal < fi.InodesFree) {
			t.Errorf("ReadFsInfo(%s) = %+v", p, fi)
		}
	}
}

func TestBlockDeviceName(t *testing.T) {
	if got := ueventDevName("MAJOR=8\nMINOR=1\nDEVNAME=sda1\nDEVTYPE=partition\n"); got != "sda1" {
		t.Errorf("uevent DEVNAME = %q", got)
	}
	old := sysBlock
	sysBlock = t.TempDir()
	t.Cleanup(func() { sysBlock = old })
	if err := os.MkdirAll(filepath.Join(sysBlock, "259:7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sysBlock, "259:7", "uevent"), []byte("MAJOR=259\nMINOR=7\nDEVNAME=nvme0n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := BlockDeviceName(259, 7); got != "/dev/nvme0n1" {
		t.Errorf("259:7 = %q", got)
	}
	if got := BlockDeviceName(259, 99); got != "259:99" {
		t.Errorf("unknown device = %q", got)
	}
	entries := ioEntries([]cgroups.BlkioStatEntry{{Major: 259, Minor: 7, Op: "Read", Value: 5}, {Major: 259, Minor: 7, Value: 5}})
	if len(entries) != 1 || entries[0].Device != "/dev/nvme0n1" {
		t.Errorf("ioEntries = %+v", entries)
	}
}

func TestSumMetricsParts(t *testing.T) {
	a := &Cgroup{
		Throttling: Throttling{Periods: 1, ThrottledPeriods: 1, ThrottledTime: 5},
		Memory:     Memory{LocalPageFaults: 1, Failcnt: 2, Kernel: 3, HasKernel: true, OOMKills: 1, HasOOMKills: true, MaxUsage: 9, HasMaxUsage: true},
		PidsLimit:  10, HasPidsLimit: true, Procs: &Procs{FileDescriptors: 3, Sockets: 1, Threads: 2},
		Spec:    &Spec{CPUShares: 2},
		IOBytes: []IOEntry{{Major: 8, Op: "Read", Value: 1}},
		Hugetlb: []Hugetlb{{PageSize: "2MB", Usage: 2, MaxUsage: 4, HasMaxUsage: true}},
		CPUPSI:  &PSI{},
	}
	b := &Cgroup{
		Throttling: Throttling{Periods: 2},
		Memory:     Memory{LocalPageFaults: 2, Failcnt: 1, Kernel: 4, HasKernel: true, OOMKills: 2, HasOOMKills: true},
		PidsLimit:  5, HasPidsLimit: true, Procs: &Procs{FileDescriptors: 4, Threads: 1},
		IOBytes: []IOEntry{{Major: 8, Op: "Read", Value: 2}, {Major: 8, Op: "Write", Value: 7}},
		Hugetlb: []Hugetlb{{PageSize: "2MB", Usage: 1}, {PageSize: "1GB", Usage: 1 << 30}},
	}
	s := Sum([]*Cgroup{a, b})
	if s.Throttling != (Throttling{Periods: 3, ThrottledPeriods: 1, ThrottledTime: 5}) {
		t.Errorf("throttling %+v", s.Throttling)
	}
	m := s.Memory
	if m.LocalPageFaults != 3 || m.Failcnt != 3 || m.Kernel != 7 || !m.HasKernel || m.OOMKills != 3 || !m.HasOOMKills || m.HasMaxUsage {
		t.Errorf("memory %+v", m)
	}
	if s.PidsLimit != 15 || !s.HasPidsLimit || *s.Procs != (Procs{FileDescriptors: 7, Sockets: 1, Threads: 3}) {
		t.Errorf("pids limit %d %v, procs %+v", s.PidsLimit, s.HasPidsLimit, s.Procs)
	}
	if s.Spec != nil || s.CPUPSI != nil {
		t.Error("spec and pressure do not add up")
	}
	if want := []IOEntry{{Major: 8, Op: "Read", Value: 3}, {Major: 8, Op: "Write", Value: 7}}; !reflect.DeepEqual(s.IOBytes, want) {
		t.Errorf("io %+v", s.IOBytes)
	}
	if want := []Hugetlb{{PageSize: "2MB", Usage: 3}, {PageSize: "1GB", Usage: 1 << 30}}; !reflect.DeepEqual(s.Hugetlb, want) {
		t.Errorf("hugetlb %+v", s.Hugetlb)
	}
	if a.IOBytes[0].Value != 1 || a.Hugetlb[0].Usage != 2 {
		t.Error("Sum changed its inputs")
	}
	b.HasPidsLimit, b.Procs, b.Memory.HasOOMKills = false, nil, false
	s = Sum([]*Cgroup{a, b})
	if s.HasPidsLimit || s.Procs != nil || s.Memory.HasOOMKills {
		t.Errorf("a part without a value makes the sum unknown: %+v", s)
	}
}
