package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestReportPull(t *testing.T) {
	r := testReport()
	ms := time.Millisecond
	r.Pull = &PullResult{Image: "big:1", Reps: 3, Runtimes: map[string]Summary{
		"cradle":     {N: 3, P50: 1500 * ms, Max: 1800 * ms},
		"containerd": {N: 3, P50: 2000 * ms, Max: 2100 * ms},
	}}
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"\n== image pull: big:1, cold (removed before each pull), n=3 per runtime\n" +
			"  cradle      p50 1500.0  max 1800.0 ms\n" +
			"  containerd  p50 2000.0  max 2100.0 ms\n" +
			"  p50 cradle/containerd  0.75\n",
		fmt.Sprintf("  %-62s %7.2f  (target <= 1.00)  met\n", "image pull p50 / containerd", 0.75),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks\n%s\ngot:\n%s", want, got)
		}
	}
	r.Pull.Runtimes["cradle"] = Summary{N: 3, P50: 2200 * ms, Max: 2300 * ms}
	b.Reset()
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("  %-62s %7.2f  (target <= 1.00)  MISSED", "image pull p50 / containerd", 1.10); !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, b.String())
	}
}

func TestValidatePullReps(t *testing.T) {
	c := Config{Targets: []Target{{Name: "a", Endpoint: "unix:///a"}}, Variants: []Variant{{Name: "x"}}, Iterations: 1,
		Command: []string{"sleep"}, Exec: []string{"true"}, CgroupRoot: "/b", RPCTimeout: time.Second, PullImage: "big:1"}
	for _, n := range []int{0, MaxPullReps + 1} {
		c.PullReps = n
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "pull reps") {
			t.Errorf("reps %d: err %v, want a pull reps error", n, err)
		}
	}
	c.PullReps = 3
	if err := c.Validate(); err != nil {
		t.Errorf("reps 3: %v", err)
	}
}
