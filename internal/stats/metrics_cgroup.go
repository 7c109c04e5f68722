package stats

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"
)

// The values that only the metrics need from a cgroup: its spec read back
// from the controller files, and block devices by name.

// readSpecV1 reads the spec of a v1 cgroup from its cpu and memory
// controllers; nil when cpu.shares cannot be read.
func readSpecV1(cpuPath, memPath string) *Spec {
	shares, err := fscommon.GetCgroupParamUint(cpuPath, "cpu.shares")
	if err != nil {
		return nil
	}
	sp := &Spec{CPUShares: shares}
	sp.CPUPeriod, _ = fscommon.GetCgroupParamUint(cpuPath, "cpu.cfs_period_us")
	// -1, no quota, reads as 0.
	sp.CPUQuota, _ = fscommon.GetCgroupParamUint(cpuPath, "cpu.cfs_quota_us")
	if v, err := fscommon.GetCgroupParamUint(memPath, "memory.soft_limit_in_bytes"); err == nil {
		sp.MemoryReservation = limitOf(v)
	}
	// Missing without swap accounting (swapaccount=0).
	if v, err := fscommon.GetCgroupParamUint(memPath, "memory.memsw.limit_in_bytes"); err == nil {
		sp.MemorySwapLimit = limitOf(v)
	}
	return sp
}

// readSpecV2 reads the spec of a v2 cgroup; nil when the cpu controller
// is not enabled for it (no cpu.weight or cpu.max).
func readSpecV2(dir string) *Spec {
	weight, err := fscommon.GetCgroupParamUint(dir, "cpu.weight")
	if err != nil {
		return nil
	}
	max, err := cgroups.ReadFile(dir, "cpu.max")
	if err != nil {
		return nil
	}
	sp := &Spec{CPUShares: SharesFromWeight(weight)}
	sp.CPUQuota, sp.CPUPeriod = parseCPUMax(max)
	if v, err := fscommon.GetCgroupParamUint(dir, "memory.min"); err == nil {
		sp.MemoryReservation = limitOf(v)
	}
	if v, err := fscommon.GetCgroupParamUint(dir, "memory.swap.max"); err == nil {
		sp.MemorySwapLimit = limitOf(v)
	}
	return sp
}

// parseCPUMax parses v2 cpu.max, "$MAX $PERIOD" where $MAX is "max"
// without a quota.
func parseCPUMax(s string) (quota, period uint64) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, 0
	}
	if f[0] != "max" {
		quota, _ = strconv.ParseUint(f[0], 10, 64)
	}
	if len(f) > 1 {
		period, _ = strconv.ParseUint(f[1], 10, 64)
	}
	return quota, period
}

// SharesFromWeight converts a v2 cpu.weight back into v1 cpu.shares,
// inverting the conversion that runc and the kubelet apply
// (cgroups.ConvertCPUSharesToCgroupV2Value). That conversion rounds up,
// so several shares map to one weight; this returns the largest of them,
// which is exact for the minimum (2), the default (1024) and the maximum
// (262144), and converts back to the same weight.
func SharesFromWeight(weight uint64) uint64 {
	switch {
	case weight == 0:
		return 0
	case weight <= 1:
		return 2
	case weight >= 10000:
		return 262144
	}
	// weight = 10^((l²+125l)/612 - 7/34) with l = log2(shares), solved for
	// l, then corrected for the rounding of both ways.
	c := 612 * (math.Log10(float64(weight)) + 7.0/34.0)
	l := (-125 + math.Sqrt(125*125+4*c)) / 2
	shares := uint64(math.Round(math.Pow(2, l)))
	for shares > 2 && cgroups.ConvertCPUSharesToCgroupV2Value(shares) > weight {
		shares--
	}
	for shares < 262144 && cgroups.ConvertCPUSharesToCgroupV2Value(shares+1) <= weight {
		shares++
	}
	return shares
}

func ioEntries(in []cgroups.BlkioStatEntry) []IOEntry {
	var out []IOEntry
	for _, e := range in {
		if e.Op == "" {
			continue // a per-device total without an operation
		}
		out = append(out, IOEntry{Major: e.Major, Minor: e.Minor, Device: BlockDeviceName(e.Major, e.Minor), Op: e.Op, Value: e.Value})
	}
	return out
}

// addIO adds b's entries to a's, by device and operation.
func addIO(a, b []IOEntry) []IOEntry {
	for _, e := range b {
		found := false
		for i := range a {
			if a[i].Major == e.Major && a[i].Minor == e.Minor && a[i].Op == e.Op {
				a[i].Value += e.Value
				found = true
				break
			}
		}
		if !found {
			a = append(a, e)
		}
	}
	return a
}

// addHugetlb adds b's usage to a's, by page size; peaks do not add up.
func addHugetlb(a, b []Hugetlb) []Hugetlb {
	for _, h := range b {
		found := false
		for i := range a {
			if a[i].PageSize == h.PageSize {
				a[i].Usage += h.Usage
				found = true
				break
			}
		}
		if !found {
			a = append(a, Hugetlb{PageSize: h.PageSize, Usage: h.Usage})
		}
	}
	return a
}

// sysBlock is where block devices are listed by number.
var sysBlock = "/sys/dev/block"

var deviceNames sync.Map // "major:minor" -> name

// BlockDeviceName names a block device the way cadvisor does, "/dev/sda",
// from the DEVNAME of its uevent; "major:minor" when sysfs does not know
// it. Names are cached: a device number keeps its name while it exists.
func BlockDeviceName(major, minor uint64) string {
	key := strconv.FormatUint(major, 10) + ":" + strconv.FormatUint(minor, 10)
	if v, ok := deviceNames.Load(key); ok {
		return v.(string)
	}
	name := key
	if data, err := os.ReadFile(filepath.Join(sysBlock, key, "uevent")); err == nil {
		if n := ueventDevName(string(data)); n != "" {
			name = "/dev/" + n
			deviceNames.Store(key, name)
		}
	}
	return name
}

func ueventDevName(data string) string {
	for _, line := range strings.Split(data, "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
