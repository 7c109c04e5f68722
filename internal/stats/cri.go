package stats

import runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

// CPUUsage is the sample's CRI CPU usage; nil without a cgroup reading.
// Nano cores are left out until a second sample exists.
func (s *Sample) CPUUsage() *runtimeapi.CpuUsage {
	if s == nil || s.Cgroup == nil {
		return nil
	}
	u := &runtimeapi.CpuUsage{
		Timestamp: s.Time.UnixNano(), UsageCoreNanoSeconds: u64(s.Cgroup.CPU), Psi: psiToCRI(s.Cgroup.CPUPSI),
	}
	if s.HasNanoCores {
		u.UsageNanoCores = u64(s.NanoCores)
	}
	return u
}

// MemoryUsage is the sample's CRI memory usage; available bytes only when
// the cgroup has a limit.
func (s *Sample) MemoryUsage() *runtimeapi.MemoryUsage {
	if s == nil || s.Cgroup == nil {
		return nil
	}
	m := s.Cgroup.Memory
	u := &runtimeapi.MemoryUsage{
		Timestamp: s.Time.UnixNano(), WorkingSetBytes: u64(m.WorkingSet), UsageBytes: u64(m.Usage),
		RssBytes: u64(m.RSS), PageFaults: u64(m.PageFaults), MajorPageFaults: u64(m.MajorPageFaults),
		Psi: psiToCRI(s.Cgroup.MemoryPSI),
	}
	if avail, ok := Available(m.Limit, m.WorkingSet); ok {
		u.AvailableBytes = u64(avail)
	}
	return u
}

// SwapUsage is the sample's CRI swap usage.
func (s *Sample) SwapUsage() *runtimeapi.SwapUsage {
	if s == nil || s.Cgroup == nil {
		return nil
	}
	m := s.Cgroup.Memory
	u := &runtimeapi.SwapUsage{Timestamp: s.Time.UnixNano(), SwapUsageBytes: u64(m.SwapUsage)}
	if avail, ok := Available(m.SwapLimit, m.SwapUsage); ok {
		u.SwapAvailableBytes = u64(avail)
	}
	return u
}

// ProcessUsage is the number of processes in the cgroup.
func (s *Sample) ProcessUsage() *runtimeapi.ProcessUsage {
	if s == nil || s.Cgroup == nil {
		return nil
	}
	return &runtimeapi.ProcessUsage{Timestamp: s.Time.UnixNano(), ProcessCount: u64(s.Cgroup.Processes)}
}

// WritableLayer is the usage of the container's writable layer.
func (s *Sample) WritableLayer() *runtimeapi.FilesystemUsage {
	if s == nil || s.Layer == nil {
		return nil
	}
	return &runtimeapi.FilesystemUsage{
		Timestamp: s.Time.UnixNano(), FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.Layer.Mountpoint},
		UsedBytes: u64(s.Layer.Bytes), InodesUsed: u64(s.Layer.Inodes),
	}
}

// NetworkUsage reports eth0 as the default interface and the others
// besides it; nil for a pod without a network namespace of its own.
func (s *Sample) NetworkUsage() *runtimeapi.NetworkUsage {
	if s == nil || len(s.Network) == 0 {
		return nil
	}
	u := &runtimeapi.NetworkUsage{Timestamp: s.Time.UnixNano()}
	for _, i := range s.Network {
		iu := &runtimeapi.NetworkInterfaceUsage{
			Name: i.Name, RxBytes: u64(i.RxBytes), RxErrors: u64(i.RxErrors), TxBytes: u64(i.TxBytes), TxErrors: u64(i.TxErrors),
		}
		if i.Name == DefaultInterface {
			u.DefaultInterface = iu
		} else {
			u.Interfaces = append(u.Interfaces, iu)
		}
	}
	return u
}

// ContainerStats is the CRI stats of a container; s may be nil, which
// leaves everything but the attributes unset.
func ContainerStats(attrs *runtimeapi.ContainerAttributes, s *Sample) *runtimeapi.ContainerStats {
	return &runtimeapi.ContainerStats{
		Attributes: attrs, Cpu: s.CPUUsage(), Memory: s.MemoryUsage(), Swap: s.SwapUsage(), WritableLayer: s.WritableLayer(),
	}
}

// PodStats is the CRI stats of a pod, with its containers' stats.
func PodStats(attrs *runtimeapi.PodSandboxAttributes, s *Sample, containers []*runtimeapi.ContainerStats) *runtimeapi.PodSandboxStats {
	return &runtimeapi.PodSandboxStats{
		Attributes: attrs,
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu: s.CPUUsage(), Memory: s.MemoryUsage(), Network: s.NetworkUsage(), Process: s.ProcessUsage(),
			Containers: containers,
		},
	}
}

func psiToCRI(p *PSI) *runtimeapi.PsiStats {
	if p == nil {
		return nil
	}
	conv := func(d PSIData) *runtimeapi.PsiData {
		return &runtimeapi.PsiData{Total: d.Total, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &runtimeapi.PsiStats{Some: conv(p.Some), Full: conv(p.Full)}
}
