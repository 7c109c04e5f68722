package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statsWait covers two collection periods: the first sample is taken on
// request, the second by the loop up to one period later.
const statsWait = 40 * time.Second

func (d *daemon) containerStats(t *testing.T, id string) *runtimeapi.ContainerStats {
	t.Helper()
	resp, err := d.rt.ContainerStats(ctx(t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStats %s: %v", id, err)
	}
	return resp.GetStats()
}

func (d *daemon) podStats(t *testing.T, id string) *runtimeapi.PodSandboxStats {
	t.Helper()
	resp, err := d.rt.PodSandboxStats(ctx(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil {
		t.Fatalf("PodSandboxStats %s: %v", id, err)
	}
	return resp.GetStats()
}

// CPU, memory, writable layer, processes and network of a busy pod, as the
// kubelet reads them, plus the filters of the List calls.
func TestStatsContainersAndPods(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfgA := d.podConfig(t, "stats-a")
	podA := d.runPod(t, cfgA)
	cfgB := d.podConfig(t, "stats-b")
	podB := d.runPod(t, cfgB)

	busyCfg := containerConfig("busy", "sh", "-c", "while :; do :; done & exec sleep 1000")
	busyCfg.Labels = map[string]string{"role": "busy"}
	busy := d.startContainer(t, podA, cfgA, busyCfg)
	// Writes 5 MiB after a pause, so the first sample sees the layer before.
	writer := d.startContainer(t, podA, cfgA, containerConfig("writer", "sh", "-c",
		"sleep 5; dd if=/dev/zero of=/big bs=1M count=5; exec sleep 1000"))
	other := d.startContainer(t, podB, cfgB, containerConfig("other", "sleep", "1000"))

	first := d.containerStats(t, busy)
	if first.GetCpu().GetUsageCoreNanoSeconds() == nil || first.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
		t.Fatalf("first ContainerStats lacks CPU or memory: %v", first)
	}
	if first.GetAttributes().GetId() != busy || first.GetAttributes().GetMetadata().GetName() != "busy" {
		t.Errorf("attributes: %v", first.GetAttributes())
	}
	wFirst := d.containerStats(t, writer).GetWritableLayer()
	if wFirst.GetUsedBytes() == nil || wFirst.GetFsId().GetMountpoint() == "" || wFirst.GetTimestamp() == 0 {
		t.Fatalf("writable layer: %v", wFirst)
	}
	rxFirst := d.podStats(t, podA).GetLinux().GetNetwork().GetDefaultInterface().GetRxBytes().GetValue()

	// Traffic to the pod: connection attempts to a closed port are
	// answered with resets, which count on eth0 both ways.
	ip := d.podIP(t, podA)
	for range 5 {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "9"), time.Second); err == nil {
			c.Close()
		}
	}

	var cs *runtimeapi.ContainerStats
	eventually(t, statsWait, func() string {
		cs = d.containerStats(t, busy)
		used, prev := cs.GetCpu().GetUsageCoreNanoSeconds().GetValue(), first.GetCpu().GetUsageCoreNanoSeconds().GetValue()
		if used <= prev || cs.GetCpu().GetUsageNanoCores().GetValue() == 0 {
			return fmt.Sprintf("CPU usage %d (was %d), nano cores %v", used, prev, cs.GetCpu().GetUsageNanoCores())
		}
		return ""
	})
	// A busy loop on one core: anything far from 1e9 means the unit is off.
	if nc := cs.GetCpu().GetUsageNanoCores().GetValue(); nc < 2e8 || nc > 3e9 {
		t.Errorf("nano cores of a busy loop = %d, want about 1e9", nc)
	}
	m := cs.GetMemory()
	if m.GetWorkingSetBytes().GetValue() == 0 || m.GetUsageBytes().GetValue() < m.GetWorkingSetBytes().GetValue() || m.GetRssBytes() == nil || m.GetPageFaults() == nil {
		t.Errorf("memory: %v", m)
	}
	eventually(t, statsWait, func() string {
		l := d.containerStats(t, writer).GetWritableLayer()
		if grew := int64(l.GetUsedBytes().GetValue()) - int64(wFirst.GetUsedBytes().GetValue()); grew < 5<<20 {
			return fmt.Sprintf("writable layer grew by %d bytes, want 5 MiB", grew)
		}
		if l.GetInodesUsed().GetValue() <= wFirst.GetInodesUsed().GetValue() {
			return fmt.Sprintf("inodes %v, was %v", l.GetInodesUsed(), wFirst.GetInodesUsed())
		}
		return ""
	})
	eventually(t, statsWait, func() string {
		n := d.podStats(t, podA).GetLinux().GetNetwork()
		eth0 := n.GetDefaultInterface()
		if eth0.GetName() != "eth0" || eth0.GetRxBytes().GetValue() <= rxFirst || eth0.GetTxBytes().GetValue() == 0 {
			// A missing pin means something else released it (another
			// daemon's startup sweep), not a stats failure.
			_, pinErr := os.Stat("/var/run/netns/cradle-" + podA)
			return fmt.Sprintf("pod network: %v (rx was %d; pin: %v)", n, rxFirst, pinErr)
		}
		return ""
	})

	ps := d.podStats(t, podA)
	l := ps.GetLinux()
	t.Logf("busy: %d nano cores, working set %d, rss %d; pod: %d processes, %d nano cores, eth0 rx %d tx %d",
		cs.GetCpu().GetUsageNanoCores().GetValue(), m.GetWorkingSetBytes().GetValue(), m.GetRssBytes().GetValue(),
		l.GetProcess().GetProcessCount().GetValue(), l.GetCpu().GetUsageNanoCores().GetValue(),
		l.GetNetwork().GetDefaultInterface().GetRxBytes().GetValue(), l.GetNetwork().GetDefaultInterface().GetTxBytes().GetValue())
	if ps.GetAttributes().GetId() != podA || ps.GetAttributes().GetMetadata().GetName() != "stats-a" {
		t.Errorf("pod attributes: %v", ps.GetAttributes())
	}
	// sh, its busy subshell and sleep; sh and sleep in the writer.
	if n := l.GetProcess().GetProcessCount().GetValue(); n < 2 {
		t.Errorf("pod process count %d", n)
	}
	if l.GetCpu().GetUsageCoreNanoSeconds().GetValue() < cs.GetCpu().GetUsageCoreNanoSeconds().GetValue() || l.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
		t.Errorf("pod CPU %v or memory %v below its containers'", l.GetCpu(), l.GetMemory())
	}
	if ids := statsIDs(l.GetContainers()); strings.Join(ids, ",") != strings.Join(sortedIDs(busy, writer), ",") {
		t.Errorf("pod stats list containers %v, want busy and writer", ids)
	}

	listC := func(f *runtimeapi.ContainerStatsFilter) []string {
		resp, err := d.rt.ListContainerStats(ctx(t), &runtimeapi.ListContainerStatsRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		return statsIDs(resp.GetStats())
	}
	for name, c := range map[string]struct {
		f    *runtimeapi.ContainerStatsFilter
		want []string
	}{
		"all":       {nil, sortedIDs(busy, writer, other)},
		"pod":       {&runtimeapi.ContainerStatsFilter{PodSandboxId: podA}, sortedIDs(busy, writer)},
		"id prefix": {&runtimeapi.ContainerStatsFilter{Id: other[:12]}, []string{other}},
		"labels":    {&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"role": "busy"}}, []string{busy}},
		"no match":  {&runtimeapi.ContainerStatsFilter{PodSandboxId: podB, LabelSelector: map[string]string{"role": "busy"}}, nil},
	} {
		if got := listC(c.f); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ListContainerStats %s: %v, want %v", name, got, c.want)
		}
	}
	listP := func(f *runtimeapi.PodSandboxStatsFilter) []string {
		resp, err := d.rt.ListPodSandboxStats(ctx(t), &runtimeapi.ListPodSandboxStatsRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range resp.GetStats() {
			ids = append(ids, s.GetAttributes().GetId())
		}
		sort.Strings(ids)
		return ids
	}
	for name, c := range map[string]struct {
		f    *runtimeapi.PodSandboxStatsFilter
		want []string
	}{
		"all":      {nil, sortedIDs(podA, podB)},
		"id":       {&runtimeapi.PodSandboxStatsFilter{Id: podB}, []string{podB}},
		"labels":   {&runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"pod": "stats-b"}}, []string{podB}},
		"no match": {&runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"pod": "nope"}}, nil},
	} {
		if got := listP(c.f); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ListPodSandboxStats %s: %v, want %v", name, got, c.want)
		}
	}

	_, err := d.rt.ContainerStats(ctx(t), &runtimeapi.ContainerStatsRequest{ContainerId: "0123456789abcdef"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "container_id") {
		t.Errorf("ContainerStats of an unknown ID: %v, want NotFound naming container_id", err)
	}
	_, err = d.rt.PodSandboxStats(ctx(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "0123456789abcdef"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStats of an unknown ID: %v, want NotFound", err)
	}
}

// The cadvisor-style metrics the kubelet takes from the runtime, for a
// container with CPU and memory limits like critest's.
func TestPodMetrics(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "metrics")
	pod := d.runPod(t, podCfg)
	appCfg := containerConfig("app", "sh", "-c", "sleep 1000 & echo ready; exec sleep 1000")
	appCfg.Linux.Resources = &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 512,
		MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20,
	}
	before := time.Now()
	ctr := d.startContainer(t, pod, podCfg, appCfg)
	// Both processes exist before the first (synchronous) sample.
	logOf(t, filepath.Join(podCfg.LogDirectory, "app.log"), "ready")

	dresp, err := d.rt.ListMetricDescriptors(ctx(t), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, desc := range dresp.GetDescriptors() {
		if desc.GetHelp() == "" || len(desc.GetLabelKeys()) == 0 {
			t.Errorf("descriptor %v lacks help or label keys", desc)
		}
		keys[desc.GetName()] = desc.GetLabelKeys()
	}

	resp, err := d.rt.ListPodSandboxMetrics(ctx(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetPodMetrics()) != 1 || resp.GetPodMetrics()[0].GetPodSandboxId() != pod {
		t.Fatalf("pod metrics: %v", resp.GetPodMetrics())
	}
	pm := resp.GetPodMetrics()[0]
	// name -> label key=value of the series -> metric
	type series map[string]*runtimeapi.Metric
	byName := func(ms []*runtimeapi.Metric) map[string]series {
		out := map[string]series{}
		for _, m := range ms {
			k := keys[m.GetName()]
			if len(m.GetLabelValues()) != len(k) {
				t.Errorf("%s: label values %v for keys %v", m.GetName(), m.GetLabelValues(), k)
				continue
			}
			var extra []string
			for i, key := range k {
				switch key {
				case "container", "id", "image", "name", "namespace", "pod":
				default:
					extra = append(extra, key+"="+m.GetLabelValues()[i])
				}
			}
			if out[m.GetName()] == nil {
				out[m.GetName()] = series{}
			}
			out[m.GetName()][strings.Join(extra, ",")] = m
		}
		return out
	}
	value := func(ms map[string]series, name, labels string) (uint64, bool) {
		m := ms[name][labels]
		return m.GetValue().GetValue(), m != nil
	}
	podM := byName(pm.GetMetrics())
	if rx := podM["container_network_receive_bytes_total"]["interface=eth0"]; rx == nil || !contains(rx.GetLabelValues(), "eth0") {
		t.Errorf("pod network metric: %v", podM["container_network_receive_bytes_total"])
	}
	for _, name := range []string{"container_network_receive_packets_dropped_total", "container_network_transmit_packets_dropped_total",
		"container_network_receive_errors_total", "container_network_transmit_packets_total"} {
		if _, ok := value(podM, name, "interface=eth0"); !ok {
			t.Errorf("pod has no %s for eth0", name)
		}
	}
	// The only pod of this daemon: read from its cgroup parent directly.
	if p, _ := value(podM, "container_processes", ""); p < 2 {
		t.Errorf("pod-level metrics: %d processes", p)
	}
	if ws, _ := value(podM, "container_memory_working_set_bytes", ""); ws == 0 {
		t.Errorf("pod working set 0")
	}
	if st, _ := value(podM, "container_start_time_seconds", ""); st == 0 || st > uint64(before.Unix()) {
		t.Errorf("pod start time %d, before %d", st, before.Unix())
	}
	if len(pm.GetContainerMetrics()) != 1 || pm.GetContainerMetrics()[0].GetContainerId() != ctr {
		t.Fatalf("container metrics: %v", pm.GetContainerMetrics())
	}
	cm := byName(pm.GetContainerMetrics()[0].GetMetrics())
	ws := cm["container_memory_working_set_bytes"][""]
	if ws.GetValue().GetValue() == 0 || ws.GetMetricType() != runtimeapi.MetricType_GAUGE {
		t.Errorf("working set metric: %v", ws)
	}
	labels := map[string]string{}
	for i, k := range keys["container_memory_working_set_bytes"] {
		labels[k] = ws.GetLabelValues()[i]
	}
	if labels["container"] != "app" || labels["pod"] != "metrics" || labels["namespace"] != "itest" || labels["id"] != ctr || labels["image"] != busybox {
		t.Errorf("labels: %v", labels)
	}
	if cpu := cm["container_cpu_usage_seconds_total"]["cpu=total"]; cpu == nil || cpu.GetMetricType() != runtimeapi.MetricType_COUNTER {
		t.Errorf("cpu metric: %v", cm["container_cpu_usage_seconds_total"])
	}

	// Values read back from the container's cgroup, processes and layer.
	now := uint64(time.Now().Unix())
	for _, c := range []struct {
		name, labels string
		ok           func(uint64) bool
	}{
		{"container_processes", "", func(v uint64) bool { return v == 2 }},
		{"container_threads", "", func(v uint64) bool { return v == 2 }},
		{"container_threads_max", "", func(v uint64) bool { return true }},
		{"container_file_descriptors", "", func(v uint64) bool { return v >= 3 }},
		{"container_sockets", "", func(v uint64) bool { return v == 0 }},
		{"container_spec_cpu_period", "", func(v uint64) bool { return v == 100000 }},
		{"container_spec_cpu_quota", "", func(v uint64) bool { return v == 20000 }},
		{"container_spec_cpu_shares", "", func(v uint64) bool { return v == 512 }},
		{"container_spec_memory_limit_bytes", "", func(v uint64) bool { return v == 64<<20 }},
		{"container_spec_memory_reservation_limit_bytes", "", func(v uint64) bool { return true }},
		{"container_spec_memory_swap_limit_bytes", "", func(v uint64) bool { return true }},
		{"container_cpu_cfs_periods_total", "", func(v uint64) bool { return true }},
		{"container_cpu_cfs_throttled_periods_total", "", func(v uint64) bool { return true }},
		{"container_cpu_cfs_throttled_seconds_total", "", func(v uint64) bool { return true }},
		{"container_memory_failures_total", "failure_type=pgfault,scope=container", func(v uint64) bool { return v > 0 }},
		{"container_memory_failures_total", "failure_type=pgmajfault,scope=hierarchy", func(v uint64) bool { return true }},
		{"container_memory_max_usage_bytes", "", func(v uint64) bool { return v > 0 }},
		{"container_memory_failcnt", "", func(v uint64) bool { return v == 0 }},
		{"container_oom_events_total", "", func(v uint64) bool { return v == 0 }},
		{"container_memory_kernel_usage", "", func(v uint64) bool { return true }},
		{"container_memory_mapped_file", "", func(v uint64) bool { return true }},
		{"container_ulimits_soft", "ulimit=max_open_files", func(v uint64) bool { return v > 0 }},
		{"container_start_time_seconds", "", func(v uint64) bool { return v >= uint64(before.Unix()) && v <= now }},
		{"container_last_seen", "", func(v uint64) bool { return v >= uint64(before.Unix()) && v <= now }},
	} {
		v, ok := value(cm, c.name, c.labels)
		if !ok || !c.ok(v) {
			t.Errorf("%s{%s} = %d (present %v); all: %v", c.name, c.labels, v, ok, cm[c.name])
		}
	}
	for _, name := range []string{"container_fs_usage_bytes", "container_fs_inodes_free", "container_fs_inodes_total", "container_fs_limit_bytes"} {
		if len(cm[name]) != 1 {
			t.Errorf("%s: %v", name, cm[name])
		}
		for l, m := range cm[name] {
			if l == "device=" || (name != "container_fs_usage_bytes" && m.GetValue().GetValue() == 0) {
				t.Errorf("%s{%s} = %v", name, l, m.GetValue())
			}
		}
	}

	// As critest checks: every descriptor has values in the pod or its
	// container, except those this host may have nothing for.
	mayLack := map[string]bool{
		// Block I/O the kernel attributes to the cgroup (none for cached
		// reads and, on v1, for buffered writes).
		"container_blkio_device_usage_total": true, "container_fs_reads_bytes_total": true, "container_fs_reads_total": true,
		"container_fs_writes_bytes_total": true, "container_fs_writes_total": true,
		// Controllers and files a host may not have.
		"container_hugetlb_usage_bytes": true, "container_hugetlb_max_usage_bytes": true,
		"container_pressure_cpu_waiting_seconds_total": true, "container_pressure_cpu_stalled_seconds_total": true,
		"container_pressure_memory_waiting_seconds_total": true, "container_pressure_memory_stalled_seconds_total": true,
		"container_pressure_io_waiting_seconds_total": true, "container_pressure_io_stalled_seconds_total": true,
	}
	for name := range keys {
		if len(podM[name]) == 0 && len(cm[name]) == 0 && !mayLack[name] {
			t.Errorf("no values for %s", name)
		}
	}
}

func statsIDs(list []*runtimeapi.ContainerStats) []string {
	var ids []string
	for _, s := range list {
		ids = append(ids, s.GetAttributes().GetId())
	}
	sort.Strings(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	sort.Strings(ids)
	return ids
}
