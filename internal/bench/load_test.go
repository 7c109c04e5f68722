package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseLoads(t *testing.T) {
	got, err := ParseLoads(" 40x4, 100x8 ")
	if err != nil || len(got) != 2 || got[0] != (Load{40, 4}) || got[1] != (Load{100, 8}) {
		t.Errorf("got %+v, %v", got, err)
	}
	if got, err := ParseLoads(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %+v, %v", got, err)
	}
	for _, bad := range []string{"40", "x4", "40x", "0x1", "4x5", "40x0", "1000x8", "ax4"} {
		if _, err := ParseLoads(bad); err == nil {
			t.Errorf("ParseLoads(%q): no error", bad)
		}
	}
}

func TestLoadResultFigures(t *testing.T) {
	r := LoadResult{Started: 100, First: Summary{P50: 100 * time.Millisecond}, Last: Summary{P50: 120 * time.Millisecond},
		DaemonBefore: Mem{RSS: 40 << 20}, DaemonAfter: Mem{RSS: 50 << 20}}
	if g := r.GrowthRatio(); g < 1.199 || g > 1.201 {
		t.Errorf("GrowthRatio = %v, want 1.2", g)
	}
	if got := r.RSSGrowthPerPod(); got != (10<<20)/100 {
		t.Errorf("RSSGrowthPerPod = %d", got)
	}
	if (LoadResult{}).GrowthRatio() != 0 || (LoadResult{}).RSSGrowthPerPod() != 0 {
		t.Error("an empty result has figures")
	}
}

// The targets section judges the first runtime against the second, and
// the floor, and says which targets were missed.
func TestReportTargets(t *testing.T) {
	r := testReport()
	ms := time.Millisecond
	r.Floor = &FloorResult{Pod: Summary{N: 30, P50: 4 * ms}, Exec: Summary{N: 30, P50: 4 * ms}}
	r.Loads = []LoadResults{{Load: Load{100, 8}, Runtimes: map[string]*LoadResult{
		"cradle": {Load: Load{100, 8}, Started: 100, PodsPerSec: 30, Ready: Summary{P50: 50 * ms},
			First: Summary{P50: 40 * ms}, Last: Summary{P50: 80 * ms}, DaemonBefore: Mem{RSS: 40 << 20}, DaemonAfter: Mem{RSS: 41 << 20}},
		"containerd": {Load: Load{100, 8}, Started: 100, PodsPerSec: 10, Ready: Summary{P50: 100 * ms}},
	}}}
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"== floor:", "== loads:", "100x8 cradle", "== targets (#16): cradle against containerd",
		"100x8: throughput / containerd", "3.00  (target >= 2.00)  met",
		"100x8: pod start p50, last 10 / first 10", "2.00  (target <= 1.30)  MISSED",
		"ExecSync p50 / exec floor",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
