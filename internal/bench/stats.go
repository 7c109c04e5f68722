// Package bench measures CRI runtimes side by side: the latency of the pod
// and container lifecycle calls, and the memory a daemon and its per-pod
// processes use. It drives each runtime over its CRI socket only, with the
// same workload, so any CRI runtime can be compared with any other.
package bench

import (
	"math"
	"slices"
	"time"
)

// Summary is the distribution of one operation's latencies.
type Summary struct {
	N    int           `json:"n"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Summarize computes the percentiles of samples (in any order; the slice is
// not modified). An empty input gives the zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		N:    len(s),
		P50:  Percentile(s, 50),
		P90:  Percentile(s, 90),
		P99:  Percentile(s, 99),
		Max:  s[len(s)-1],
		Mean: sum / time.Duration(len(s)),
	}
}

// Percentile returns the p-th percentile (0..100) of sorted, interpolating
// linearly between the two closest ranks (the "R-7" definition that
// numpy.percentile and spreadsheets use by default): p=0 is the minimum,
// p=100 the maximum. sorted must be in ascending order and non-empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case p <= 0:
		return sorted[0]
	case p >= 100:
		return sorted[n-1]
	}
	h := p / 100 * float64(n-1)
	lo := int(math.Floor(h))
	hi := min(lo+1, n-1)
	frac := h - float64(lo)
	d := float64(sorted[lo]) + frac*float64(sorted[hi]-sorted[lo])
	return time.Duration(math.Round(d))
}
