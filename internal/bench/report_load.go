package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets (#16), for the first runtime against the second.
const (
	targetLatencyRatio    = 0.6  // pod start and ExecSync p50, at most
	targetExecFloorRatio  = 1.2  // ExecSync p50 over the exec floor, at most
	targetThroughputRatio = 2.0  // pods/s, at least
	targetGrowth          = 1.3  // last pods' start p50 over the first ones', at most
	targetRSSPerPodMiB    = 0.15 // daemon RSS growth per running pod, at most
	targetPerPodPSSMiB    = 0.5  // per-pod processes' PSS, at most
)

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (r *Report) writeFloor(b *strings.Builder, names []string) {
	f := r.Floor
	if f == nil {
		return
	}
	fmt.Fprintf(b, "\n== floor: no daemon, the same runc and CNI plugins, timed in Go (n=%d)\n", f.Pod.N)
	fmt.Fprintf(b, "  pod (pin netns + CNI ADD + runc run -d)  p50 %s  p90 %s ms\n", ms(f.Pod.P50), ms(f.Pod.P90))
	fmt.Fprintf(b, "  exec (runc exec)                         p50 %s  p90 %s ms\n", ms(f.Exec.P50), ms(f.Exec.P90))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, pad("p50 over the floor", 30)+"\t"+strings.Join(names, "\t")+"\t")
	for _, v := range r.Variants {
		for _, row := range []struct {
			op    string
			floor time.Duration
		}{{OpPodStart, f.Pod.P50}, {OpExecSync, f.Exec.P50}} {
			line := pad(v.Name+" "+strings.Fields(row.op)[0], 30) + "\t"
			for _, n := range names {
				line += fmt.Sprintf("%.2f\t", ratio(v.Latency[row.op][n].P50, row.floor))
			}
			fmt.Fprintln(tw, line)
		}
	}
	_ = tw.Flush()
}

func (r *Report) writeLoads(b *strings.Builder, names []string) {
	if len(r.Loads) == 0 {
		return
	}
	fmt.Fprintf(b, "\n== loads: N pods started C at a time, all kept running, then removed (pod shape %s)\n", r.Variants[0].Name)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, pad("load / runtime", 16)+"\tstarted\terrors\tpods/s\tpod start p50 ms\tfirst 10 p50\tlast 10 p50\tlast/first\tdaemon RSS MiB/pod\t")
	for _, l := range r.Loads {
		for _, n := range names {
			x := l.Runtimes[n]
			if x == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%.2f\t%.3f\t\n", pad(l.Load.String()+" "+n, 16), x.Started, x.Errors,
				x.PodsPerSec, ms(x.Ready.P50), ms(x.First.P50), ms(x.Last.P50), x.GrowthRatio(), float64(x.RSSGrowthPerPod())/(1<<20))
		}
	}
	_ = tw.Flush()
}

// writeTargets says, target by target, whether the first runtime met it.
func (r *Report) writeTargets(b *strings.Builder, names []string) {
	if len(names) != 2 {
		return
	}
	me, peer := names[0], names[1]
	fmt.Fprintf(b, "\n== targets (#16): %s against %s, this run\n", me, peer)
	check := func(what string, v, limit float64, atMost bool) {
		ok := v <= limit
		if !atMost {
			ok = v >= limit
		}
		verdict, rel := "met", "<="
		if !ok {
			verdict = "MISSED"
		}
		if !atMost {
			rel = ">="
		}
		fmt.Fprintf(b, "  %-62s %7.2f  (target %s %.2f)  %s\n", what, v, rel, limit, verdict)
	}
	// A ratio is judged only when both sides were measured.
	checkRatio := func(what string, a, b time.Duration, limit float64) {
		if a > 0 && b > 0 {
			check(what, ratio(a, b), limit, true)
		}
	}
	for _, v := range r.Variants {
		for _, o := range [][2]string{{OpPodStart, "pod start"}, {OpExecSync, "ExecSync"}} {
			checkRatio(v.Name+": "+o[1]+" p50 / "+peer, v.Latency[o[0]][me].P50, v.Latency[o[0]][peer].P50, targetLatencyRatio)
		}
		if r.Floor != nil {
			checkRatio(v.Name+": ExecSync p50 / exec floor", v.Latency[OpExecSync][me].P50, r.Floor.Exec.P50, targetExecFloorRatio)
		}
		if m := v.Memory[me]; m != nil {
			check(v.Name+": per-pod processes, MiB PSS per pod", float64(m.OverheadPerPod().PSS)/(1<<20), targetPerPodPSSMiB, true)
		}
	}
	for _, l := range r.Loads {
		a, p := l.Runtimes[me], l.Runtimes[peer]
		if a == nil || p == nil {
			continue
		}
		name := l.Load.String()
		checkRatio(name+": pod start p50 / "+peer, a.Ready.P50, p.Ready.P50, targetLatencyRatio)
		if p.PodsPerSec > 0 {
			check(name+": throughput / "+peer, a.PodsPerSec/p.PodsPerSec, targetThroughputRatio, false)
		}
		check(name+": errors", float64(a.Errors), 0, true)
		if l.Load.Pods >= 2*GrowthWindow {
			check(name+": pod start p50, last 10 / first 10", a.GrowthRatio(), targetGrowth, true)
			check(name+": daemon RSS growth, MiB per running pod", float64(a.RSSGrowthPerPod())/(1<<20), targetRSSPerPodMiB, true)
		}
	}
	if p := r.Pull; p != nil {
		checkRatio("image pull p50 / "+peer, p.Runtimes[me].P50, p.Runtimes[peer].P50, targetPullRatio)
	}
}
