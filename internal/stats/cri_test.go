package stats

import (
	"testing"
	"time"
)

func TestCRIConversion(t *testing.T) {
	var none *Sample
	if none.CPUUsage() != nil || none.MemoryUsage() != nil || none.WritableLayer() != nil || none.NetworkUsage() != nil {
		t.Error("a nil sample must convert to nil parts")
	}
	s := &Sample{
		Time:   time.Unix(5, 0),
		Cgroup: &Cgroup{CPU: 3e9, Processes: 4, Memory: Memory{Usage: 10, WorkingSet: 8, Limit: 20}},
		Network: []Interface{
			{Name: "eth0", RxBytes: 1, TxBytes: 2},
			{Name: "net1", RxBytes: 3},
		},
		Layer: &Layer{Bytes: 4096, Inodes: 3, Mountpoint: "/var/lib/cradle/storage"},
	}
	if c := s.CPUUsage(); c.UsageNanoCores != nil || c.UsageCoreNanoSeconds.GetValue() != 3e9 || c.Timestamp != 5e9 {
		t.Errorf("cpu = %v", c)
	}
	s.NanoCores, s.HasNanoCores = 7, true
	if c := s.CPUUsage(); c.GetUsageNanoCores().GetValue() != 7 {
		t.Errorf("nano cores = %v", c)
	}
	if m := s.MemoryUsage(); m.GetAvailableBytes().GetValue() != 12 || m.GetWorkingSetBytes().GetValue() != 8 {
		t.Errorf("memory = %v", m)
	}
	n := s.NetworkUsage()
	if n.GetDefaultInterface().GetName() != "eth0" || len(n.GetInterfaces()) != 1 || n.GetInterfaces()[0].GetName() != "net1" {
		t.Errorf("network = %v", n)
	}
	if l := s.WritableLayer(); l.GetUsedBytes().GetValue() != 4096 || l.GetFsId().GetMountpoint() == "" {
		t.Errorf("layer = %v", l)
	}
	s.Cgroup.Memory.Limit = 0
	if m := s.MemoryUsage(); m.AvailableBytes != nil {
		t.Errorf("unlimited memory has available bytes: %v", m)
	}
}

func TestMetrics(t *testing.T) {
	descs := map[string]int{}
	for _, d := range Descriptors() {
		descs[d.GetName()] = len(d.GetLabelKeys())
		for i := 1; i < len(d.GetLabelKeys()); i++ {
			if d.GetLabelKeys()[i-1] >= d.GetLabelKeys()[i] {
				t.Errorf("%s: label keys not sorted: %v", d.GetName(), d.GetLabelKeys())
			}
		}
	}
	s := &Sample{
		Time:    time.Unix(5, 0),
		Cgroup:  &Cgroup{CPU: 2500e6, Processes: 2},
		Layer:   &Layer{Bytes: 10},
		Network: []Interface{{Name: "eth0", RxBytes: 99}},
	}
	got := map[string]uint64{}
	for _, m := range Metrics(Labels{Container: "c", ID: "id", Pod: "p"}, time.Time{}, s) {
		n, ok := descs[m.GetName()]
		if !ok {
			t.Errorf("metric %s has no descriptor", m.GetName())
		}
		if n != len(m.GetLabelValues()) {
			t.Errorf("%s: %d label values for %d keys", m.GetName(), len(m.GetLabelValues()), n)
		}
		if m.GetTimestamp() != 5e9 {
			t.Errorf("%s: timestamp %d", m.GetName(), m.GetTimestamp())
		}
		got[m.GetName()] = m.GetValue().GetValue()
	}
	for name, want := range map[string]uint64{
		"container_cpu_usage_seconds_total": 2, "container_processes": 2, "container_fs_usage_bytes": 10,
		"container_network_receive_bytes_total": 99,
	} {
		if got[name] != want {
			t.Errorf("%s = %d, want %d", name, got[name], want)
		}
	}
	if Metrics(Labels{}, time.Time{}, nil) != nil {
		t.Error("no sample, no metrics")
	}
}
