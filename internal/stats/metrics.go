package stats

import (
	"sort"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels identify the container of a metric the way cadvisor labels it. A
// pod's own series have an empty Container and Image, as cadvisor's pod
// cgroups do.
type Labels struct {
	Container, ID, Image, Name, Namespace, Pod string
}

// baseKeys are the label keys of every metric; metrics add their own.
var baseKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

func (l Labels) values() []string {
	return []string{l.Container, l.ID, l.Image, l.Name, l.Namespace, l.Pod}
}

// series is one value of a metric, with the values of the metric's own
// label keys in the order metricDef.extra lists them.
type series struct {
	extra []string
	value uint64
}

// input is what a metric is computed from.
type input struct {
	s       *Sample
	started time.Time // zero when unknown
}

type metricDef struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      []string // the metric's own label keys
	values     func(*input) []series
}

// layout places a metric's label values: its keys, base and own, sorted
// as the CRI asks, and for each the index into the base values followed
// by the metric's own.
type layout struct {
	keys  []string
	order []int
}

func layoutOf(extra []string) layout {
	all := append(append([]string{}, baseKeys...), extra...)
	l := layout{keys: make([]string, len(all)), order: make([]int, len(all))}
	for i := range l.order {
		l.order[i] = i
	}
	sort.Slice(l.order, func(a, b int) bool { return all[l.order[a]] < all[l.order[b]] })
	for i, j := range l.order {
		l.keys[i] = all[j]
	}
	return l
}

func (l layout) values(base, extra []string) []string {
	out := make([]string, len(l.order))
	for i, j := range l.order {
		if j < len(base) {
			out[i] = base[j]
		} else {
			out[i] = extra[j-len(base)]
		}
	}
	return out
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

func one(v uint64) []series { return []series{{value: v}} }

// cg reads a value of the sample's cgroup; ok false leaves the metric out.
func cg(f func(*Cgroup) (uint64, bool)) func(*input) []series {
	return func(in *input) []series {
		if in.s.Cgroup == nil {
			return nil
		}
		if v, ok := f(in.s.Cgroup); ok {
			return one(v)
		}
		return nil
	}
}

// always is cg for values every cgroup reading has.
func always(f func(*Cgroup) uint64) func(*input) []series {
	return cg(func(c *Cgroup) (uint64, bool) { return f(c), true })
}

// spec reads a value of the cgroup's spec; zero leaves it out unless
// zeroOK (a period or quota of 0 means none is set).
func spec(f func(*Spec) uint64, zeroOK bool) func(*input) []series {
	return cg(func(c *Cgroup) (uint64, bool) {
		if c.Spec == nil {
			return 0, false
		}
		v := f(c.Spec)
		return v, v != 0 || zeroOK
	})
}

func procs(f func(*Procs) uint64) func(*input) []series {
	return cg(func(c *Cgroup) (uint64, bool) {
		if c.Procs == nil {
			return 0, false
		}
		return f(c.Procs), true
	})
}

// cfs reads the CFS counters, which cadvisor reports for cgroups with a
// quota; a pod's sum has them when any container is throttled.
func cfs(f func(Throttling) uint64) func(*input) []series {
	return cg(func(c *Cgroup) (uint64, bool) {
		quota := c.Spec != nil && c.Spec.CPUQuota > 0
		return f(c.Throttling), quota || c.Throttling.Periods > 0
	})
}

func psi(p func(*Cgroup) *PSI, full bool) func(*input) []series {
	return cg(func(c *Cgroup) (uint64, bool) {
		v := p(c)
		if v == nil {
			return 0, false
		}
		if full {
			return v.Full.Total / uint64(time.Second), true
		}
		return v.Some.Total / uint64(time.Second), true
	})
}

func layerFS(f func(*FsInfo) uint64) func(*input) []series {
	return func(in *input) []series {
		if l := in.s.Layer; l != nil && l.FS != nil {
			return []series{{extra: []string{l.FS.Device}, value: f(l.FS)}}
		}
		return nil
	}
}

// io reports one operation of a block I/O counter per device.
func io(entries func(*Cgroup) []IOEntry, op string) func(*input) []series {
	return func(in *input) []series {
		if in.s.Cgroup == nil {
			return nil
		}
		var out []series
		for _, e := range entries(in.s.Cgroup) {
			if e.Op == op {
				out = append(out, series{extra: []string{e.Device}, value: e.Value})
			}
		}
		return out
	}
}

func hugetlb(max bool) func(*input) []series {
	return func(in *input) []series {
		if in.s.Cgroup == nil {
			return nil
		}
		var out []series
		for _, h := range in.s.Cgroup.Hugetlb {
			switch {
			case !max:
				out = append(out, series{extra: []string{h.PageSize}, value: h.Usage})
			case h.HasMaxUsage:
				out = append(out, series{extra: []string{h.PageSize}, value: h.MaxUsage})
			}
		}
		return out
	}
}

func network(f func(Interface) uint64) func(*input) []series {
	return func(in *input) []series {
		out := make([]series, 0, len(in.s.Network))
		for _, i := range in.s.Network {
			out = append(out, series{extra: []string{i.Name}, value: f(i)})
		}
		return out
	}
}

var (
	cpuKey       = []string{"cpu"}
	deviceKey    = []string{"device"}
	blkioKeys    = []string{"device", "major", "minor", "operation"}
	failureKeys  = []string{"failure_type", "scope"}
	pagesizeKey  = []string{"pagesize"}
	interfaceKey = []string{"interface"}
	ulimitKey    = []string{"ulimit"}
)

// The CRI carries integers, so seconds are whole seconds.
var metricDefs = []metricDef{
	{"container_last_seen", "Last time a container was seen by the exporter", gauge, nil,
		func(in *input) []series { return one(uint64(in.s.Time.Unix())) }},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil,
		func(in *input) []series {
			if in.started.IsZero() {
				return nil
			}
			return one(uint64(in.started.Unix()))
		}},

	// CPU
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, cpuKey,
		func(in *input) []series {
			if in.s.Cgroup == nil {
				return nil
			}
			return []series{{extra: []string{"total"}, value: in.s.Cgroup.CPU / uint64(time.Second)}}
		}},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil,
		always(func(c *Cgroup) uint64 { return c.CPUUser / uint64(time.Second) })},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil,
		always(func(c *Cgroup) uint64 { return c.CPUSystem / uint64(time.Second) })},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil,
		cfs(func(t Throttling) uint64 { return t.Periods })},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil,
		cfs(func(t Throttling) uint64 { return t.ThrottledPeriods })},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil,
		cfs(func(t Throttling) uint64 { return t.ThrottledTime / uint64(time.Second) })},

	// Memory
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.Usage })},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.WorkingSet })},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.RSS })},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.Cache })},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.SwapUsage })},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.MappedFile })},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil,
		cg(func(c *Cgroup) (uint64, bool) { return c.Memory.Kernel, c.Memory.HasKernel })},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil,
		cg(func(c *Cgroup) (uint64, bool) { return c.Memory.MaxUsage, c.Memory.HasMaxUsage })},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.Failcnt })},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, failureKeys,
		func(in *input) []series {
			if in.s.Cgroup == nil {
				return nil
			}
			m := in.s.Cgroup.Memory
			return []series{
				{[]string{"pgfault", "container"}, m.LocalPageFaults},
				{[]string{"pgmajfault", "container"}, m.LocalMajorPageFaults},
				{[]string{"pgfault", "hierarchy"}, m.PageFaults},
				{[]string{"pgmajfault", "hierarchy"}, m.MajorPageFaults},
			}
		}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil,
		cg(func(c *Cgroup) (uint64, bool) { return c.Memory.OOMKills, c.Memory.HasOOMKills })},

	// Spec
	{"container_spec_cpu_period", "CPU period of the container.", gauge, nil,
		spec(func(s *Spec) uint64 { return s.CPUPeriod }, false)},
	{"container_spec_cpu_quota", "CPU quota of the container.", gauge, nil,
		spec(func(s *Spec) uint64 { return s.CPUQuota }, false)},
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil,
		spec(func(s *Spec) uint64 { return s.CPUShares }, true)},
	{"container_spec_memory_limit_bytes", "Memory limit for the container (0 when unlimited).", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Memory.Limit })},
	{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container (0 when unset).", gauge, nil,
		spec(func(s *Spec) uint64 { return s.MemoryReservation }, true)},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container (0 when unlimited).", gauge, nil,
		spec(func(s *Spec) uint64 { return s.MemorySwapLimit }, true)},

	// Processes
	{"container_processes", "Number of processes running inside the container.", gauge, nil,
		always(func(c *Cgroup) uint64 { return c.Processes })},
	{"container_threads", "Number of threads running inside the container.", gauge, nil,
		procs(func(p *Procs) uint64 { return p.Threads })},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", gauge, nil,
		cg(func(c *Cgroup) (uint64, bool) { return c.PidsLimit, c.HasPidsLimit })},
	{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil,
		procs(func(p *Procs) uint64 { return p.FileDescriptors })},
	{"container_sockets", "Number of open sockets for the container.", gauge, nil,
		procs(func(p *Procs) uint64 { return p.Sockets })},
	{"container_ulimits_soft", "Soft ulimit values for the container root process. Unlimited is 18446744073709551615 (RLIM_INFINITY).", gauge, ulimitKey,
		func(in *input) []series {
			out := make([]series, 0, len(in.s.Ulimits))
			for _, u := range in.s.Ulimits {
				out = append(out, series{extra: []string{u.Name}, value: u.Soft})
			}
			return out
		}},

	// Filesystem and block I/O
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, deviceKey,
		func(in *input) []series {
			l := in.s.Layer
			if l == nil {
				return nil
			}
			dev := ""
			if l.FS != nil {
				dev = l.FS.Device
			}
			return []series{{extra: []string{dev}, value: l.Bytes}}
		}},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, deviceKey,
		layerFS(func(f *FsInfo) uint64 { return f.Capacity })},
	{"container_fs_inodes_total", "Number of available Inodes.", gauge, deviceKey,
		layerFS(func(f *FsInfo) uint64 { return f.InodesTotal })},
	{"container_fs_inodes_free", "Number of available Inodes.", gauge, deviceKey,
		layerFS(func(f *FsInfo) uint64 { return f.InodesFree })},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, deviceKey,
		io(func(c *Cgroup) []IOEntry { return c.IOBytes }, "Read")},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, deviceKey,
		io(func(c *Cgroup) []IOEntry { return c.IOBytes }, "Write")},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, deviceKey,
		io(func(c *Cgroup) []IOEntry { return c.IOOps }, "Read")},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, deviceKey,
		io(func(c *Cgroup) []IOEntry { return c.IOOps }, "Write")},
	{"container_blkio_device_usage_total", "Blkio device bytes usage.", counter, blkioKeys,
		func(in *input) []series {
			if in.s.Cgroup == nil {
				return nil
			}
			out := make([]series, 0, len(in.s.Cgroup.IOBytes))
			for _, e := range in.s.Cgroup.IOBytes {
				out = append(out, series{
					extra: []string{e.Device, strconv.FormatUint(e.Major, 10), strconv.FormatUint(e.Minor, 10), e.Op},
					value: e.Value,
				})
			}
			return out
		}},

	// Huge pages
	{"container_hugetlb_usage_bytes", "Current hugepage usage in bytes.", gauge, pagesizeKey, hugetlb(false)},
	{"container_hugetlb_max_usage_bytes", "Maximum hugepage usage recorded in bytes.", gauge, pagesizeKey, hugetlb(true)},

	// Network
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.RxBytes })},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.RxPackets })},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.RxDropped })},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.RxErrors })},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.TxBytes })},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.TxPackets })},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.TxDropped })},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, interfaceKey,
		network(func(i Interface) uint64 { return i.TxErrors })},

	// Pressure stall information (cgroup v2)
	{"container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", counter, nil,
		psi(func(c *Cgroup) *PSI { return c.CPUPSI }, false)},
	{"container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", counter, nil,
		psi(func(c *Cgroup) *PSI { return c.CPUPSI }, true)},
	{"container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", counter, nil,
		psi(func(c *Cgroup) *PSI { return c.MemoryPSI }, false)},
	{"container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", counter, nil,
		psi(func(c *Cgroup) *PSI { return c.MemoryPSI }, true)},
	{"container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", counter, nil,
		psi(func(c *Cgroup) *PSI { return c.IOPSI }, false)},
	{"container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", counter, nil,
		psi(func(c *Cgroup) *PSI { return c.IOPSI }, true)},
}

var layouts = func() []layout {
	out := make([]layout, len(metricDefs))
	for i, d := range metricDefs {
		out[i] = layoutOf(d.extra)
	}
	return out
}()

// Descriptors lists every metric that Metrics can return. The list is
// fixed: the kubelet reads it once.
func Descriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDefs))
	for i, d := range metricDefs {
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: layouts[i].keys})
	}
	return out
}

// Metrics turns a sample into metrics: those of its cgroup, processes and
// writable layer, and one series per interface, device, page size or
// limit where the metric has them. started is when the container started
// (the pod was created), zero if unknown. Timestamps are the sample's,
// since it comes from the cache.
func Metrics(l Labels, started time.Time, s *Sample) []*runtimeapi.Metric {
	if s == nil {
		return nil
	}
	in := &input{s: s, started: started}
	base := l.values()
	ts := s.Time.UnixNano()
	var out []*runtimeapi.Metric
	for i, d := range metricDefs {
		for _, v := range d.values(in) {
			out = append(out, &runtimeapi.Metric{
				Name: d.name, Timestamp: ts, MetricType: d.typ, LabelValues: layouts[i].values(base, v.extra), Value: u64(v.value),
			})
		}
	}
	return out
}
