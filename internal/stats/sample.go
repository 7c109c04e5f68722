package stats

import "time"

// Sample is one reading of a container or a pod. Parts that could not be
// read are nil: a container that just exited has no cgroup any more, but
// its writable layer still has a size.
type Sample struct {
	Time    time.Time
	Cgroup  *Cgroup
	Layer   *Layer      // containers only
	Network []Interface // pods with a network namespace of their own

	// NanoCores is the CPU usage averaged since the previous sample; it is
	// valid only when HasNanoCores is set (it needs two samples).
	NanoCores    uint64
	HasNanoCores bool
}

// Cgroup is one reading of a cgroup's counters.
type Cgroup struct {
	CPU       uint64 // cumulative usage, core-nanoseconds
	CPUUser   uint64 // of which in user mode
	CPUSystem uint64 // of which in kernel mode
	Memory    Memory
	Processes uint64
	CPUPSI    *PSI // cgroup v2 only
	MemoryPSI *PSI // cgroup v2 only
}

// Memory is the memory usage of a cgroup, the way the kubelet reports it.
type Memory struct {
	Usage           uint64
	WorkingSet      uint64 // usage minus inactive file pages
	RSS             uint64 // anonymous memory
	Cache           uint64 // page cache
	PageFaults      uint64
	MajorPageFaults uint64
	Limit           uint64 // 0 when unlimited
	SwapUsage       uint64
	SwapLimit       uint64 // 0 when unlimited or unknown
}

// PSI is pressure stall information for one resource; totals are in
// nanoseconds.
type PSI struct {
	Some, Full PSIData
}

// PSIData is one line of a pressure file.
type PSIData struct {
	Total                uint64
	Avg10, Avg60, Avg300 float64
}

// Layer is the usage of a container's writable layer.
type Layer struct {
	Bytes, Inodes uint64
	Mountpoint    string // identifies the filesystem, as ImageFsInfo does
}

// Interface holds the counters of one network interface.
type Interface struct {
	Name                         string
	RxBytes, RxErrors, RxPackets uint64
	TxBytes, TxErrors, TxPackets uint64
}
