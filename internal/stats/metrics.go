package stats

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels identify the container of a metric the way cadvisor labels it. A
// pod's own series have an empty Container, as cadvisor's pod cgroups do.
type Labels struct {
	Container, ID, Image, Name, Namespace, Pod string
}

// Label keys are sorted, as the CRI asks; values follow the same order.
var (
	labelKeys    = []string{"container", "id", "image", "name", "namespace", "pod"}
	netLabelKeys = []string{"container", "id", "image", "interface", "name", "namespace", "pod"}
)

func (l Labels) values() []string {
	return []string{l.Container, l.ID, l.Image, l.Name, l.Namespace, l.Pod}
}

func (l Labels) netValues(iface string) []string {
	return []string{l.Container, l.ID, l.Image, iface, l.Name, l.Namespace, l.Pod}
}

type metricDef struct {
	name, help string
	typ        runtimeapi.MetricType
	value      func(*Sample) (uint64, bool)
}

type netMetricDef struct {
	name, help string
	value      func(Interface) uint64
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

func fromCgroup(f func(*Cgroup) uint64) func(*Sample) (uint64, bool) {
	return func(s *Sample) (uint64, bool) {
		if s.Cgroup == nil {
			return 0, false
		}
		return f(s.Cgroup), true
	}
}

// The CRI carries integers, so CPU seconds are whole seconds.
var sampleMetrics = []metricDef{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter,
		fromCgroup(func(c *Cgroup) uint64 { return c.CPU / uint64(time.Second) })},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter,
		fromCgroup(func(c *Cgroup) uint64 { return c.CPUUser / uint64(time.Second) })},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter,
		fromCgroup(func(c *Cgroup) uint64 { return c.CPUSystem / uint64(time.Second) })},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge,
		fromCgroup(func(c *Cgroup) uint64 { return c.Memory.Usage })},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge,
		fromCgroup(func(c *Cgroup) uint64 { return c.Memory.WorkingSet })},
	{"container_memory_rss", "Size of RSS in bytes.", gauge,
		fromCgroup(func(c *Cgroup) uint64 { return c.Memory.RSS })},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge,
		fromCgroup(func(c *Cgroup) uint64 { return c.Memory.Cache })},
	{"container_memory_swap", "Container swap usage in bytes.", gauge,
		fromCgroup(func(c *Cgroup) uint64 { return c.Memory.SwapUsage })},
	{"container_spec_memory_limit_bytes", "Memory limit for the container (0 when unlimited).", gauge,
		fromCgroup(func(c *Cgroup) uint64 { return c.Memory.Limit })},
	{"container_processes", "Number of processes running inside the container.", gauge,
		fromCgroup(func(c *Cgroup) uint64 { return c.Processes })},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container's writable layer.", gauge,
		func(s *Sample) (uint64, bool) {
			if s.Layer == nil {
				return 0, false
			}
			return s.Layer.Bytes, true
		}},
}

var netMetrics = []netMetricDef{
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", func(i Interface) uint64 { return i.RxBytes }},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", func(i Interface) uint64 { return i.TxBytes }},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", func(i Interface) uint64 { return i.RxErrors }},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", func(i Interface) uint64 { return i.TxErrors }},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", func(i Interface) uint64 { return i.RxPackets }},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", func(i Interface) uint64 { return i.TxPackets }},
}

// Descriptors lists every metric that Metrics can return. The list is
// fixed: the kubelet reads it once.
func Descriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(sampleMetrics)+len(netMetrics))
	for _, m := range sampleMetrics {
		out = append(out, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: labelKeys})
	}
	for _, m := range netMetrics {
		out = append(out, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: netLabelKeys})
	}
	return out
}

// Metrics turns a sample into metrics: those of its cgroup and writable
// layer, and one series per interface for its network. Timestamps are the
// sample's, since it comes from the cache.
func Metrics(l Labels, s *Sample) []*runtimeapi.Metric {
	if s == nil {
		return nil
	}
	ts := s.Time.UnixNano()
	var out []*runtimeapi.Metric
	for _, m := range sampleMetrics {
		if v, ok := m.value(s); ok {
			out = append(out, &runtimeapi.Metric{Name: m.name, Timestamp: ts, MetricType: m.typ, LabelValues: l.values(), Value: u64(v)})
		}
	}
	for _, i := range s.Network {
		for _, m := range netMetrics {
			out = append(out, &runtimeapi.Metric{
				Name: m.name, Timestamp: ts, MetricType: counter, LabelValues: l.netValues(i.Name), Value: u64(m.value(i)),
			})
		}
	}
	return out
}
