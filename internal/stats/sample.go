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
	Ulimits []Ulimit    // containers only: those of the init process

	// NanoCores is the CPU usage averaged since the previous sample; it is
	// valid only when HasNanoCores is set (it needs two samples).
	NanoCores    uint64
	HasNanoCores bool
}

// Cgroup is one reading of a cgroup's counters.
type Cgroup struct {
	CPU        uint64 // cumulative usage, core-nanoseconds
	CPUUser    uint64 // of which in user mode
	CPUSystem  uint64 // of which in kernel mode
	Throttling Throttling
	Memory     Memory
	// Processes counts the processes of the cgroup and its descendants
	// (cgroup.procs), or the tasks (pids.current) when those could not be
	// listed.
	Processes uint64
	// PidsLimit is pids.max, 0 when unlimited; valid with HasPidsLimit
	// (the pids controller is there).
	PidsLimit    uint64
	HasPidsLimit bool
	Procs        *Procs // nil when the processes could not be listed
	Spec         *Spec  // nil for a sum of cgroups, or when unreadable
	// IOBytes and IOOps are the block I/O per device and operation (v1
	// blkio "Read", "Write", "Sync", "Async", "Discard", "Total"; v2 io.stat
	// "Read", "Write", "Discard"). Empty when the kernel attributed none.
	IOBytes, IOOps []IOEntry
	Hugetlb        []Hugetlb // by page size; empty without the controller
	CPUPSI         *PSI      // cgroup v2 only
	MemoryPSI      *PSI      // cgroup v2 only
	IOPSI          *PSI      // cgroup v2 only
}

// Throttling is the CFS bandwidth control of a cgroup (cpu.stat).
type Throttling struct {
	Periods, ThrottledPeriods uint64
	ThrottledTime             uint64 // nanoseconds
}

// Memory is the memory usage of a cgroup, the way the kubelet reports it.
type Memory struct {
	Usage           uint64
	WorkingSet      uint64 // usage minus inactive file pages
	RSS             uint64 // anonymous memory
	Cache           uint64 // page cache
	MappedFile      uint64 // memory-mapped page cache
	PageFaults      uint64 // of the cgroup and its descendants
	MajorPageFaults uint64
	// Local page faults are the cgroup's own, without descendants (v1);
	// v2 counts only hierarchically, so they equal the others there.
	LocalPageFaults      uint64
	LocalMajorPageFaults uint64
	Limit                uint64 // 0 when unlimited
	SwapUsage            uint64
	SwapLimit            uint64 // 0 when unlimited or unknown
	// MaxUsage is the peak usage (v1 memory.max_usage_in_bytes, v2
	// memory.peak since Linux 5.19); valid with HasMaxUsage.
	MaxUsage    uint64
	HasMaxUsage bool
	// Failcnt counts the times usage hit the limit: v1 memory.failcnt,
	// v2 the "max" events of memory.events.
	Failcnt uint64
	// Kernel is kernel memory: v1 memory.kmem.usage_in_bytes, v2 the
	// "kernel" entry of memory.stat (or its parts on older kernels);
	// valid with HasKernel.
	Kernel    uint64
	HasKernel bool
	// OOMKills counts processes killed by the OOM killer in the cgroup:
	// v1 memory.oom_control (Linux 4.13+), v2 memory.events; valid with
	// HasOOMKills.
	OOMKills    uint64
	HasOOMKills bool
}

// Spec is the resource configuration of a cgroup, read back from it.
type Spec struct {
	CPUShares uint64 // v1 cpu.shares; on v2 converted back from cpu.weight
	CPUPeriod uint64 // microseconds
	CPUQuota  uint64 // microseconds per period, 0 without a quota
	// MemoryReservation is v1 memory.soft_limit_in_bytes or v2
	// memory.min, as cadvisor reads them; 0 when unset.
	MemoryReservation uint64
	// MemorySwapLimit is v1 memory.memsw.limit_in_bytes (memory plus
	// swap) or v2 memory.swap.max (swap alone), as cadvisor reads them; 0
	// when unlimited or without swap accounting.
	MemorySwapLimit uint64
}

// IOEntry is one device and operation of a block I/O counter.
type IOEntry struct {
	Major, Minor uint64
	Device       string // "/dev/<name>", or "major:minor" when unknown
	Op           string
	Value        uint64
}

// Hugetlb is the usage of one huge page size.
type Hugetlb struct {
	PageSize    string // as the kernel names it: "2MB", "1GB"
	Usage       uint64
	MaxUsage    uint64 // v1 only
	HasMaxUsage bool
}

// Procs are counts over the processes of a cgroup, from /proc.
type Procs struct {
	FileDescriptors uint64
	Sockets         uint64 // file descriptors that are sockets
	Threads         uint64
}

// Ulimit is one resource limit of a process, from /proc/<pid>/limits.
// Unlimited is RLIM_INFINITY, the maximum uint64, as the kernel keeps it.
type Ulimit struct {
	Name       string // as cadvisor names it: "max_open_files"
	Soft, Hard uint64
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
	FS            *FsInfo
}

// FsInfo describes the filesystem that holds a writable layer.
type FsInfo struct {
	Device                  string // the mount's source, e.g. /dev/vda1
	Capacity                uint64 // bytes
	InodesTotal, InodesFree uint64
}

// Interface holds the counters of one network interface.
type Interface struct {
	Name                                    string
	RxBytes, RxErrors, RxPackets, RxDropped uint64
	TxBytes, TxErrors, TxPackets, TxDropped uint64
}
