package bench

import (
	"fmt"
	"strings"
)

func histCell(h HistQuantile) string {
	if h.Count == 0 {
		return "none recorded"
	}
	return fmt.Sprintf("%.0f ms (bucket %g-%g s, n=%d)", h.Value*1000, h.Lower, h.Upper, h.Count)
}

func (r *Report) writeKubelet(b *strings.Builder, names []string) {
	k := r.Kubelet
	if k == nil {
		return
	}
	fmt.Fprintf(b, "\n== kubelet: %d static pods written at once to a standalone kubelet's manifest dir\n", k.Pods)
	for _, n := range names {
		x := k.Runtimes[n]
		if x == nil {
			continue
		}
		fmt.Fprintf(b, "  %-11s pod Running p50 %s  max %s ms; all %d Running after %s ms\n", n,
			ms(x.Running.P50), ms(x.Running.Max), x.Pods, ms(x.AllRunning))
		fmt.Fprintf(b, "  %-11s %s p50 %s\n", "", MetricPodStart, histCell(x.PodStart))
		fmt.Fprintf(b, "  %-11s %s p50 %s\n", "", MetricPodStartSLI, histCell(x.SLI))
	}
	if len(names) == 2 {
		a, p := k.Runtimes[names[0]], k.Runtimes[names[1]]
		if a != nil && p != nil {
			fmt.Fprintf(b, "  %s/%s: pod Running p50 %.2f, all Running %.2f", names[0], names[1],
				ratio(a.Running.P50, p.Running.P50), ratio(a.AllRunning, p.AllRunning))
			if a.PodStart.Count > 0 && p.PodStart.Count > 0 && p.PodStart.Value > 0 {
				fmt.Fprintf(b, ", pod start p50 %.2f", a.PodStart.Value/p.PodStart.Value)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("  (pod Running: from the manifests written to each pod Running in the kubelet's /pods, polled every 50 ms;\n" +
		"   the histograms' buckets are 0.5, 1, 2, 3 s...; the kubelet observes pod_start twice per pod, at its\n" +
		"   first sync and when the pod runs, and leaves static pods out of the SLI one)\n")
}
