package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

const kubeletMetrics = `# HELP kubelet_pod_start_duration_seconds [ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run
# TYPE kubelet_pod_start_duration_seconds histogram
kubelet_pod_start_duration_seconds_bucket{le="0.5"} 4
kubelet_pod_start_duration_seconds_bucket{le="1"} 10
kubelet_pod_start_duration_seconds_bucket{le="2"} 18
kubelet_pod_start_duration_seconds_bucket{le="3"} 20
kubelet_pod_start_duration_seconds_bucket{le="+Inf"} 20
kubelet_pod_start_duration_seconds_sum 21.5
kubelet_pod_start_duration_seconds_count 20
# HELP kubelet_pod_start_sli_duration_seconds [ALPHA] SLI
# TYPE kubelet_pod_start_sli_duration_seconds histogram
kubelet_pod_start_sli_duration_seconds_bucket{le="0.5"} 0
kubelet_pod_start_sli_duration_seconds_bucket{le="+Inf"} 0
kubelet_pod_start_sli_duration_seconds_sum 0
kubelet_pod_start_sli_duration_seconds_count 0
# TYPE kubelet_running_pods gauge
kubelet_running_pods 20
`

func TestHistogramQuantile(t *testing.T) {
	fams, err := parseMetrics(strings.NewReader(kubeletMetrics))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q            float64
		want, lo, hi float64
	}{
		{0.5, 0.5 + 0.5*(10-4)/6.0, 0.5, 1}, // rank 10: the top of (0.5, 1]
		{0.1, 0.25, 0, 0.5},                 // rank 2 of 4 in (0, 0.5]
		{0.9, 2, 1, 2},                      // rank 18
		{0.95, 2.5, 2, 3},                   // rank 19 of (2, 3]'s 2
	} {
		got, err := histogramQuantile(fams, MetricPodStart, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Count != 20 || math.Abs(got.Value-c.want) > 1e-9 || got.Lower != c.lo || got.Upper != c.hi {
			t.Errorf("q %.2f: %+v, want %.3f in (%g, %g] of 20", c.q, got, c.want, c.lo, c.hi)
		}
	}
	for _, name := range []string{MetricPodStartSLI, "kubelet_missing"} {
		got, err := histogramQuantile(fams, name, 0.5)
		if err != nil || got != (HistQuantile{}) {
			t.Errorf("%s: %+v, %v; want the zero HistQuantile", name, got, err)
		}
	}
	if _, err := histogramQuantile(fams, "kubelet_running_pods", 0.5); err == nil {
		t.Error("a gauge gave no error")
	}
	if _, err := parseMetrics(strings.NewReader("not metrics {{{\n")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestReportKubelet(t *testing.T) {
	r := testReport()
	ms := time.Millisecond
	r.Kubelet = &KubeletResults{Pods: 20, Runtimes: map[string]*KubeletResult{
		"cradle": {Pods: 20, AllRunning: 2000 * ms, Running: Summary{N: 20, P50: 1000 * ms, Max: 1900 * ms},
			PodStart: HistQuantile{Count: 20, Value: 1.2, Lower: 1, Upper: 2}},
		"containerd": {Pods: 20, AllRunning: 4000 * ms, Running: Summary{N: 20, P50: 2500 * ms, Max: 3900 * ms},
			PodStart: HistQuantile{Count: 20, Value: 2.4, Lower: 2, Upper: 3}},
	}}
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n== kubelet: 20 static pods written at once to a standalone kubelet's manifest dir\n" +
			"  cradle      pod Running p50 1000.0  max 1900.0 ms; all 20 Running after 2000.0 ms\n" +
			"              kubelet_pod_start_duration_seconds p50 1200 ms (bucket 1-2 s, n=20)\n" +
			"              kubelet_pod_start_sli_duration_seconds p50 none recorded\n" +
			"  containerd  pod Running p50 2500.0  max 3900.0 ms; all 20 Running after 4000.0 ms\n",
		"  cradle/containerd: pod Running p50 0.40, all Running 0.50, pod start p50 0.50\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks\n%s\ngot:\n%s", want, b.String())
		}
	}
}
