package stats

import "time"

// NanoCores is the CPU usage between two readings in nano cores: used
// core-nanoseconds per second of wall time. It is false when the window is
// empty or the counter went backwards (a cgroup was recreated, or a pod's
// sum lost a container).
func NanoCores(prevUsage, curUsage uint64, prevTime, curTime time.Time) (uint64, bool) {
	window := curTime.Sub(prevTime)
	if window <= 0 || curUsage < prevUsage {
		return 0, false
	}
	// In float64: (delta * 1e9) overflows uint64 after 18 s of CPU time.
	return uint64(float64(curUsage-prevUsage) / window.Seconds()), true
}
